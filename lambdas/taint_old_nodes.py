"""Put this run's NoSchedule taint on every old node, keeping other taints."""

from eks_rolling.models import TaintOldNodesInput
from eks_rolling.services.roll import taint_old_nodes
from lambdas._runtime import step_handler

handler = step_handler(TaintOldNodesInput, taint_old_nodes)
