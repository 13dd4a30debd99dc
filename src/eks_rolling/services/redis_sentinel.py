"""Redis under Sentinel: moving replicas, the master (zero-loss switchover) and sentinels.
(Skeleton: the procedure is filled in by the Sentinel issue.)"""
