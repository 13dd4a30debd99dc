"""Redis under Sentinel and Redis Cluster: discovery from StatefulSet metadata (pure), and the
adapters over redis-py (the only modules here that import `redis`)."""
