"""One round of waiting for evicted pods' owners to be back at desired ready replicas."""

from eks_rolling.models import WaitOwnersReadyInput
from eks_rolling.services.drain import wait_owners_ready
from lambdas._runtime import step_handler

handler = step_handler(WaitOwnersReadyInput, wait_owners_ready)
