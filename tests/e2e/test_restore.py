"""RestoreCluster gives the taint and the load balancer exclusion back only to old nodes whose
instance is still in the group. A replaced node's Node object outlives its instance (until the
cloud controller deletes it): un-excluding it let the load balancer health-check a dead machine
through a Node still marked Ready, and a `make demo` run served three 504s at the roll's end."""

from __future__ import annotations

from eks_rolling.labels import EXCLUDE_FROM_EXTERNAL_LB
from eks_rolling.models import AsgOriginals, AutoscalerState, RestoreClusterInput, RollContext
from eks_rolling.services.deps import Deps
from eks_rolling.services.restore import restore_cluster
from eks_rolling.settings import Settings

from .conftest import Field


def test_restore_leaves_a_replaced_nodes_exclusion_and_untaints_the_live_one(field: Field) -> None:
    with field.env.applied():
        _check(field, Deps(Settings()))


def _check(field: Field, deps: Deps) -> None:
    env, sc = field.env, field.scenario
    ctx = RollContext(
        execution_id="arn:aws:states:us-east-1:123456789012:execution:eks-rolling:restore",
        asg_name=sc.asg_name,
        cluster_name=env.cluster_name,
        taint_value="restore",
    )
    kube = deps.kube(env.cluster_name)
    key = deps.settings.taint_key
    # Given two old nodes carrying this run's taint and the exclusion, one of them replaced
    ours = {i.instance_id for i in field.state().instances}
    live, replaced = sorted(
        (n for n in kube.list_nodes() if n.instance_id in ours),
        key=lambda n: n.name,
    )[:2]
    for node in (live, replaced):
        kube.add_taint(node.name, key, ctx.taint_value)
        kube.set_label(node.name, EXCLUDE_FROM_EXTERNAL_LB, "true")
    env.aws("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=replaced.instance_id, ShouldDecrementDesiredCapacity=True
    )
    state = field.state()
    # When the roll's RestoreCluster runs while the replaced node's Node object still exists
    out = restore_cluster(
        RestoreClusterInput(
            ctx=ctx,
            autoscaler=AutoscalerState(namespace="kube-system", name="cluster-autoscaler", found=False),
            asg=AsgOriginals(desired=state.desired, min_size=state.min_size, max_size=state.max_size),
        ),
        deps,
    )
    # Then only the live node gets its taint and exclusion back
    assert out.untainted == [live.name]
    after = {n.name: n for n in kube.list_nodes()}
    assert EXCLUDE_FROM_EXTERNAL_LB not in after[live.name].labels
    assert not any(t.key == key for t in after[live.name].taints)
    gone = after.get(replaced.name)
    assert gone is None or gone.labels.get(EXCLUDE_FROM_EXTERNAL_LB) == "true"
