"""Label the node out of external load balancers before it goes."""

from eks_rolling.models import ExcludeFromLoadBalancersInput
from eks_rolling.services.roll import exclude_from_load_balancers
from lambdas._runtime import step_handler

handler = step_handler(ExcludeFromLoadBalancersInput, exclude_from_load_balancers)
