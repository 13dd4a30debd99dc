"""After a health alarm, with revert_on_alarm: point the ASG back and plan the roll-back of the bad version's nodes."""

from eks_rolling.models import RevertTargetInput
from eks_rolling.services.revert import revert_target
from lambdas._runtime import step_handler

handler = step_handler(RevertTargetInput, revert_target)
