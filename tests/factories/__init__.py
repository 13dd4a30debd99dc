"""Builders shared by every kind of test, with keyword overrides (karpenter's pkg/test): Kubernetes
manifests (k8s.py), planner snapshots (planning.py), Redis on the sandbox (redis.py) and the Redis
procedures' fields (redis_sentinel.py, redis_cluster.py)."""
