"""Release the per-ASG lock (only if this execution holds it)."""

from eks_rolling.models import ReleaseLockInput
from eks_rolling.services.restore import release_lock
from lambdas._runtime import step_handler

handler = step_handler(ReleaseLockInput, release_lock)
