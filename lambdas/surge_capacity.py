"""Raise desired capacity (and MaxSize if needed) for one batch."""

from eks_rolling.models import SurgeCapacityInput
from eks_rolling.services.roll import surge_capacity
from lambdas._runtime import step_handler

handler = step_handler(SurgeCapacityInput, surge_capacity)
