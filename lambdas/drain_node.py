"""One round of evicting the pods of an old node."""

from eks_rolling.models import DrainNodeInput
from eks_rolling.services.drain import drain_node
from lambdas._runtime import step_handler

handler = step_handler(DrainNodeInput, drain_node)
