"""Redis under Sentinel: moving replicas, the master (a zero-loss switchover and back) and the
sentinels off old nodes. Each MoveRedisPods round does or checks one phase of one pod; what it
did is returned as actions (the execution history is the audit trail).

    replica   start -> move -> rejoin -> [reset] -> done
    master    start -> steer -> switchover -> confirm -> move -> rejoin
                    -> steer-back -> switchover-back -> confirm-back -> [reset] -> done
    sentinel  start -> move -> rejoin -> [reset] -> done

The flow is chosen from the pod's live role, not its StatefulSet: a pod of the replica set that
holds the master role gets the master flow. Failback (`redis_failback`, default on) ends with
the master where the operator placed it. Sentinels keep a moved replica's old IP for ever
(anchors-redis 1.2); the `reset` phase clears it with SENTINEL RESET, one sentinel at a time,
each waiting for its replicas, peers and CKQUORUM. It runs once per group, after the group's
last move of the roll (no pod left on a retiring node): a stale `s_down` entry is never picked
by a failover, while every reset opens a window in which that sentinel is blind (the fewer,
the safer and faster).

Pods leave their node through the Eviction API (`move`), so a PodDisruptionBudget the user put
on a StatefulSet holds: a 429 waits, within the phase's deadline, then DrainTimeoutError names
the PDB, as for any pod.

What a crash must not lose lives outside the Map iteration: the replica-priority a switchover
changes is recorded on that pod (annotation, removed once restored), so `cleanup` (RestoreCluster
and Rollback) restores it; cleanup also unpauses every data node, demotes a second master, and
runs the `reset` a failed roll never reached, so every sentinel lists exactly the live pods.

The package: survey.py reads the group (read only), decide.py decides each phase (pure),
act.py runs the actions (the only writes), procedure.py is the round; model.py types the move's
state and the actions.
"""

from .decide import STEER_PRIORITY
from .procedure import SentinelProcedure
from .survey import PRIORITY_ANNOTATION, Pod, annotation_problems

__all__ = ["PRIORITY_ANNOTATION", "STEER_PRIORITY", "Pod", "SentinelProcedure", "annotation_problems"]
