"""On failure: restore what was paused, untaint old nodes, give back idle surge capacity."""

from eks_rolling.models import RollbackInput
from eks_rolling.services.restore import rollback
from lambdas._runtime import step_handler

handler = step_handler(RollbackInput, rollback)
