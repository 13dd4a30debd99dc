"""Redis Cluster: moving a node through a temporary replica. (Skeleton: filled in by the
Redis Cluster issue.)"""
