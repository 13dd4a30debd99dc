"""What each step may do in AWS and in Kubernetes: the one place to review least privilege.

A step gets exactly the permission groups listed here (turned into IAM statements by
`infra.access`); a step in `eks_rolling.steps.STEPS` without an entry fails synth. Each entry
follows what the step's service calls (`src/eks_rolling/services/`):

- `DESCRIBE_ASG`: `AsgOps.describe` / `asgs_using_launch_template` / `terminate`'s lookup
  (DescribeAutoScalingGroups/Instances/LaunchConfigurations, ec2 DescribeInstances,
  DescribeLaunchTemplates, DescribeLaunchTemplateVersions).
- `KUBERNETES`: `Deps.kube` (eks:DescribeCluster for the endpoint and CA, then the Kubernetes
  API as the RBAC group of the EKS access entry; what the group may do is `deploy/rbac.yaml`).
- `RECORD_ORIGINALS` / `CLEAR_ORIGINALS`: `services.saved.write_saved` / `delete_saved` tag the
  ASG with the run's originals (CreateOrUpdateTags / DeleteTags on `eks-rolling/saved/*` only).
- `TAKE_LOCK` / `RELEASE_LOCK`: the per-ASG lock items (`asg#<name>`); `REDIS_GROUP_LOCK` /
  `RELEASE_REDIS_LOCKS`: the per-Redis-group lock items (`redis#<group>`) in the same table.
- `READ_REDIS_SECRETS`: `services.redis.env_for` reads a group's password from Secrets Manager
  (or from a Kubernetes Secret, which is RBAC's business).
- `HOLD_LOCK`: `AsgLock.hold` renews this run's lock item and reads the operator's control on it.
- `CALL_HOOKS`: `aws.hooks.HookCaller` invokes the hook functions listed in CDK context
  `hook_functions` (lambda:InvokeFunction on exactly those ARNs) and signs its https:// calls with
  the step's role (execute-api:Invoke on exactly the `hook_api_arns` routes); none listed, no statement.
- `READ_ALARMS`: `aws.alarms.Alarms` reads the health gate's CloudWatch alarms (DescribeAlarms on
  exactly the alarms of CDK context `health_alarms` and `health_alarm_names`; none, no statement).
- `POINT_BACK`: with `revert_on_alarm` only, `AsgOps.set_launch_template_version`'s
  UpdateAutoScalingGroup names a launch template: AWS then checks that the caller may
  ec2:RunInstances/CreateTags with it and iam:PassRole its instance role (`node_role_arns`).
- `DESCRIBE_EXECUTIONS`: `aws.executions` asks Step Functions whether a lock's holder execution
  (of this state machine) is still running, before taking a dead run's lock over.
- `STOP_WAVES`: Rollback lists the wave machine's running executions (ListExecutions on that
  machine) and stops and describes this roll's children (StopExecution, DescribeExecution on the
  wave machine's executions): waves that ran together must not go on draining while it restores.

`DESCRIBE_ASG` includes reading AWS's public SSM parameters (`/aws/service/*`): a launch template
whose ImageId is `resolve:ssm:<parameter>` is compared with each instance's AMI by resolving it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final

from eks_rolling.steps import STEPS, Step


class Need(StrEnum):
    DESCRIBE_ASG = "describe-asg"
    KUBERNETES = "kubernetes"
    TAKE_LOCK = "take-lock"
    RELEASE_LOCK = "release-lock"
    REDIS_GROUP_LOCK = "redis-group-lock"
    RELEASE_REDIS_LOCKS = "release-redis-locks"
    RECORD_ORIGINALS = "record-originals"
    CLEAR_ORIGINALS = "clear-originals"
    SUSPEND_PROCESSES = "suspend-processes"
    RESUME_PROCESSES = "resume-processes"
    SET_CAPACITY = "set-capacity"
    TERMINATE_INSTANCE = "terminate-instance"
    NOTIFY = "notify"
    READ_REDIS_SECRETS = "read-redis-secrets"
    DESCRIBE_EXECUTIONS = "describe-executions"
    STOP_WAVES = "stop-waves"
    HOLD_LOCK = "hold-lock"
    CALL_HOOKS = "call-hooks"
    READ_ALARMS = "read-alarms"
    POINT_BACK = "point-back"


N = Need

# Undo what a run left: untaint, restore MaxSize and processes, cluster-autoscaler, Redis cleanup
# (and the run's Redis group locks), shed idle surge instances, clear the record, tell people.
ROLLBACK: Final = frozenset(
    {
        N.DESCRIBE_ASG,
        N.KUBERNETES,
        N.SET_CAPACITY,
        N.RESUME_PROCESSES,
        N.CLEAR_ORIGINALS,
        N.TERMINATE_INSTANCE,
        N.NOTIFY,
        N.READ_REDIS_SECRETS,
        N.RELEASE_REDIS_LOCKS,
    }
)

STEP_NEEDS: Final[Mapping[str, frozenset[Need]]] = {
    # parse the trigger, find the ASGs (by name or by launch template), check the opt-in tag
    "resolve_target": frozenset({N.DESCRIBE_ASG}),
    # AsgLock.acquire: conditional PutItem, GetItem to name the holder; a holder execution that is
    # no longer running has its lock taken over (conditional PutItem) and what it left restored,
    # as its Rollback would have (ROLLBACK above)
    "acquire_lock": ROLLBACK | {N.TAKE_LOCK, N.DESCRIBE_EXECUTIONS},
    # snapshot of ASG + nodes/pods/PDBs, and the health of each Redis group; publishes "blocked"
    # (and that every health alarm exists)
    "plan_roll": frozenset({N.DESCRIBE_ASG, N.KUBERNETES, N.NOTIFY, N.READ_REDIS_SECRETS, N.READ_ALARMS}),
    # scale cluster-autoscaler to 0 after recording its replicas on the ASG
    "pause_autoscaler": frozenset({N.DESCRIBE_ASG, N.KUBERNETES, N.RECORD_ORIGINALS}),
    # record min/max/desired on the ASG, then SuspendProcesses
    "suspend_processes": frozenset({N.DESCRIBE_ASG, N.RECORD_ORIGINALS, N.SUSPEND_PROCESSES}),
    # NoSchedule taint on the planned nodes (Kubernetes only)
    "taint_old_nodes": frozenset({N.KUBERNETES}),
    # before PauseAutoscaler, the same gate as check_gate (a roll outside its windows waits there)
    "await_window": frozenset({N.DESCRIBE_ASG, N.HOLD_LOCK, N.NOTIFY, N.READ_ALARMS}),
    # before each wave: AsgLock.hold renews the lock and reads the operator's control (conditional
    # UpdateItem), the ASG's tags (control, maintenance windows, health alarms); publishes
    # waiting/paused/resumed; after a wave, the health alarms' states (the bake)
    "check_gate": frozenset({N.DESCRIBE_ASG, N.HOLD_LOCK, N.NOTIFY, N.READ_ALARMS}),
    # after the canary baked: the same taint on the old nodes of the later waves
    "taint_remaining_nodes": frozenset({N.KUBERNETES}),
    # UpdateAutoScalingGroup desired (and max)
    "surge_capacity": frozenset({N.DESCRIBE_ASG, N.SET_CAPACITY}),
    # new instances InService and their nodes Ready
    "wait_new_nodes": frozenset({N.DESCRIBE_ASG, N.KUBERNETES}),
    # one phase of moving the node's Redis pods (failovers, temp pods), under a per-group lock
    "move_redis_pods": frozenset({N.KUBERNETES, N.READ_REDIS_SECRETS, N.REDIS_GROUP_LOCK}),
    # evictions through the Eviction API (Redis pods are refused: moved above)
    "drain_node": frozenset({N.KUBERNETES}),
    "wait_owners_ready": frozenset({N.KUBERNETES}),
    # node label only
    "exclude_from_load_balancers": frozenset({N.KUBERNETES}),
    # re-validates the instance and its node, then terminates with decrement; publishes "node_done"
    "terminate_instance": frozenset({N.DESCRIBE_ASG, N.KUBERNETES, N.TERMINATE_INSTANCE, N.NOTIFY}),
    # lambda:InvokeFunction on the hook functions of CDK context `hook_functions` only, and
    # execute-api:Invoke on its `hook_api_arns` routes (https:// hooks are signed with the role)
    "pre_drain_hooks": frozenset({N.CALL_HOOKS}),
    "post_replace_hooks": frozenset({N.CALL_HOOKS}),
    # untaint, restore MaxSize, resume processes, restore cluster-autoscaler, Redis cleanup (and
    # this run's Redis group locks), clear the record
    "restore_cluster": frozenset(
        {
            N.DESCRIBE_ASG,
            N.KUBERNETES,
            N.SET_CAPACITY,
            N.RESUME_PROCESSES,
            N.CLEAR_ORIGINALS,
            N.READ_REDIS_SECRETS,
            N.RELEASE_REDIS_LOCKS,
        }
    ),
    # revert_on_alarm: UpdateAutoScalingGroup's launch template version (back to the old
    # instances'), then plans (snapshot, Redis health) and taints the bad version's nodes
    "revert_target": frozenset(
        {N.DESCRIBE_ASG, N.KUBERNETES, N.SET_CAPACITY, N.READ_REDIS_SECRETS, N.POINT_BACK}
    ),
    # AsgLock.release: conditional DeleteItem
    "release_lock": frozenset({N.RELEASE_LOCK}),
    # as restore_cluster, plus shedding idle surge instances; publishes "failed"
    # ...and, first, stops this roll's waves still running (waves together: their siblings)
    "rollback": ROLLBACK | {N.STOP_WAVES},
}


class StepRegistryError(ValueError):
    """`STEP_NEEDS` and `eks_rolling.steps.STEPS` disagree."""


def check_registry(steps: Iterable[Step] = STEPS, needs: Mapping[str, frozenset[Need]] = STEP_NEEDS) -> None:
    ids = [s.id for s in steps]
    missing = [i for i in ids if i not in needs]
    stale = sorted(set(needs) - set(ids))
    problems = []
    if missing:
        problems.append(f"steps without permissions in infra/steps.py STEP_NEEDS: {missing}")
    if stale:
        problems.append(f"STEP_NEEDS entries for steps that no longer exist: {stale}")
    if problems:
        raise StepRegistryError("; ".join(problems))


def needs_of(step: Step) -> frozenset[Need]:
    try:
        return STEP_NEEDS[step.id]
    except KeyError:
        raise StepRegistryError(
            f"step {step.id!r} has no entry in infra/steps.py STEP_NEEDS: decide what it may do first"
        ) from None


def steps_needing(need: Need, steps: Iterable[Step] = STEPS) -> list[Step]:
    return [s for s in steps if need in needs_of(s)]
