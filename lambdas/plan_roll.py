"""Plan the roll: outdated nodes, order, batches, blockers."""

from eks_rolling.models import PlanRollInput
from eks_rolling.services.roll import plan_roll
from lambdas._runtime import step_handler

handler = step_handler(PlanRollInput, plan_roll)
