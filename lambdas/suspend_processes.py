"""Record the ASG's sizes and suspend the processes that would fight the roll."""

from eks_rolling.models import SuspendProcessesInput
from eks_rolling.services.roll import suspend_processes
from lambdas._runtime import step_handler

handler = step_handler(SuspendProcessesInput, suspend_processes)
