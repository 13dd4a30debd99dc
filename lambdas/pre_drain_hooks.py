"""Call the node's pre-drain hooks before its first eviction."""

from eks_rolling.models import PreDrainHooksInput
from eks_rolling.services.hooks import pre_drain_hooks
from lambdas._runtime import step_handler

handler = step_handler(PreDrainHooksInput, pre_drain_hooks)
