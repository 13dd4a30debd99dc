"""Before each wave: the operator's pause / resume / abort and the maintenance windows say go or wait."""

from eks_rolling.models import CheckGateInput
from eks_rolling.services.gate import check_gate
from lambdas._runtime import step_handler

handler = step_handler(CheckGateInput, check_gate)
