"""Resume processes, restore MaxSize and cluster-autoscaler after a successful roll."""

from eks_rolling.models import RestoreClusterInput
from eks_rolling.services.restore import restore_cluster
from lambdas._runtime import step_handler

handler = step_handler(RestoreClusterInput, restore_cluster)
