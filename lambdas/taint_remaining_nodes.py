"""After the canary baked: taint the old nodes of every later wave."""

from eks_rolling.models import TaintRemainingNodesInput
from eks_rolling.services.roll import taint_remaining_nodes
from lambdas._runtime import step_handler

handler = step_handler(TaintRemainingNodesInput, taint_remaining_nodes)
