"""Record cluster-autoscaler's replicas and scale it to 0."""

from eks_rolling.models import PauseAutoscalerInput
from eks_rolling.services.roll import pause_autoscaler
from lambdas._runtime import step_handler

handler = step_handler(PauseAutoscalerInput, pause_autoscaler)
