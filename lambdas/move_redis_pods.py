"""One round of moving the Redis pods of an old node (Sentinel or Redis Cluster) before its drain."""

from eks_rolling.models import MoveRedisPodsInput
from eks_rolling.services.redis import move_redis_pods
from lambdas._runtime import step_handler

handler = step_handler(MoveRedisPodsInput, move_redis_pods)
