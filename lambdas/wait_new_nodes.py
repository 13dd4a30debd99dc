"""One round of waiting for this ASG's new nodes to be Ready."""

from eks_rolling.models import WaitNewNodesInput
from eks_rolling.services.roll import wait_new_nodes
from lambdas._runtime import step_handler

handler = step_handler(WaitNewNodesInput, wait_new_nodes)
