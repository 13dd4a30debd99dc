"""Call the node's pre-drain hooks before anything is evicted or moved off it."""

from eks_rolling.models import PreDrainHooksInput
from eks_rolling.services.hooks import pre_drain_hooks
from lambdas._runtime import step_handler

handler = step_handler(PreDrainHooksInput, pre_drain_hooks)
