"""Redis Cluster: moving a node off an old worker through a temporary replica (field report,
"Redis Cluster"; anchors-redis 6.3).

Each shard has one replica, in the other zone, and a node's `nodes.conf` lives on a zonal volume.
A master A is therefore moved through a temporary node T built from A's StatefulSet template:

  start             A is master of its slots: create T (emptyDir for nodes.conf, our labels only,
                    A's zone, no toleration of our taint, so a new node)
  temp_start        T Ready -> `CLUSTER MEET` A from T
  temp_join         every node knows T (no handshake) -> `CLUSTER REPLICATE <A>` on T
  temp_sync         T synced and listed as A's replica by every master -> `CLUSTER FAILOVER` on T
  failover_to_temp  every node: T master of A's slots, A replica of T -> evict pod A
  a_restart         A back (same node id from its volume, new IP, announced right everywhere; its
                    own stale `myself` fixed by a MEET from a peer) and synced from T
                    -> `CLUSTER FAILOVER` on A
  failover_to_a     every node: A master again, nobody follows T -> `CLUSTER FORGET T` on every
                    other node in one go (the 60 s ban must not expire anywhere first) -> delete T
  temp_remove       T's pod gone, no node knows T, `cluster_state:ok` and 16384 slots everywhere

A replica (or a master without slots) is simply evicted (`start`) and awaited (`restart`: back
with its node id, announced everywhere, synced). Pods of the group leave through the Eviction
API, so a PodDisruptionBudget on the StatefulSets holds (a 429 waits, within the phase, then
DrainTimeoutError naming the PDB); only the temporary pod (ours, no user's labels) is deleted.
`OK` from `CLUSTER FAILOVER` is never taken as success: the roles are read back from every node.
Every phase re-reads the cluster before it acts and each act is safe to repeat, because Step
Functions may run a phase twice.

Consistency argument (cleanup and aborts, `remove_temp`):
  * Both failovers are default manual failovers: the master stops its clients and the replica
    takes over only at the master's exact offset, so no acknowledged write is lost; FORCE and
    TAKEOVER (which skip that handshake) are never used.
  * T is removed only when it holds no slots and no node replicates it, so `CLUSTER FORGET` can
    never uncover a slot. If T is master, A takes its slots back first, and only if A is a synced
    replica of T.
  * If A is gone or not synced, T stays the master and its pod is kept (reported as a note):
    deleting it would leave A's slots uncovered until an automatic failover to the sibling
    replica, and lose what the sibling has not yet received. A keeps T as its master in its
    `nodes.conf`, so when A comes back it rejoins as T's replica; failing back and removing T is
    then a manual step (named in the note, and the next plan blocks on the leftover pod).

The package, as the Sentinel one: survey.py reads the group (read only: pods at the start of a
round, each node's answers on first use), checks.py holds the pure checks over the nodes' views,
decide.py one pure decision per phase (a Round in; Wait, Act or Abort out), model.py the move's
typed state and the actions, act.py the one executor (the only writes), procedure.py the wiring,
cleanup.py the way back (the same pattern, looped and bounded within one invocation).
"""

from .procedure import ClusterProcedure
from .survey import RUN_LABEL, TEMP_FOR_LABEL, TEMP_SUFFIX, temp_name

__all__ = ["RUN_LABEL", "TEMP_FOR_LABEL", "TEMP_SUFFIX", "ClusterProcedure", "temp_name"]
