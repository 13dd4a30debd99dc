"""Terminate the old instance through the ASG, decrementing desired capacity."""

from eks_rolling.models import TerminateInstanceInput
from eks_rolling.services.roll import terminate_instance
from lambdas._runtime import step_handler

handler = step_handler(TerminateInstanceInput, terminate_instance)
