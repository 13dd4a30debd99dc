"""Turn the trigger (CloudTrail event or manual input) into the ASG(s) to roll."""

from eks_rolling.models import ResolveTargetInput
from eks_rolling.services.resolve import resolve_target
from lambdas._runtime import step_handler

handler = step_handler(ResolveTargetInput, resolve_target)
