"""Take the per-ASG lock before anything changes."""

from eks_rolling.models import AcquireLockInput
from eks_rolling.services.resolve import acquire_lock
from lambdas._runtime import step_handler

handler = step_handler(AcquireLockInput, acquire_lock)
