"""Error families. A Python class name is the Step Functions error name the ASL matches on.

`RetryableError` subclasses are retried by the state machine (Retry blocks); `PermanentError`
subclasses go straight to the Catch path, which restores what was paused and fails the execution
with that name. Step Functions knows nothing of inheritance, so the ASL lists concrete names and a
contract test keeps both sides in step.
"""

from __future__ import annotations


class EksRollingError(Exception):
    """Base of every error this tool raises on purpose."""


class RetryableError(EksRollingError):
    """A transient condition: the same step may succeed if run again."""


class PermanentError(EksRollingError):
    """Running the same step again will not help; stop and restore."""


# --- retryable ---------------------------------------------------------------------------------
class KubeApiUnavailableError(RetryableError):
    """The Kubernetes API refused or dropped the request (5xx other than eviction's 500, timeouts)."""


class AwsThrottledError(RetryableError):
    """An AWS API throttled us or had a transient fault."""


class ConflictError(RetryableError):
    """Optimistic concurrency lost a race (HTTP 409); re-read and try again."""


# --- permanent: bad input (raised by ResolveTarget before anything changes) --------------------
class InvalidInputError(PermanentError):
    """The execution input is neither a supported CloudTrail event nor a manual request."""


class SettingsError(PermanentError):
    """An `EKS_ROLLING_*` variable is unknown (misspelt) or has a value of the wrong type."""


class AsgNotFoundError(PermanentError):
    """The named Auto Scaling group does not exist."""


class LaunchTemplateNotFoundError(PermanentError):
    """The launch template an Auto Scaling group is configured with no longer exists."""


class AsgNotOptedInError(PermanentError):
    """The Auto Scaling group lacks the opt-in tag."""


class AmiAliasError(PermanentError):
    """A launch template's `resolve:ssm:` AMI alias cannot be resolved (missing, denied, not an AMI)."""


class RollInProgressError(PermanentError):
    """Another execution holds the lock for this Auto Scaling group."""

    def __init__(self, message: str, *, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder  # the execution holding the lock, when known


# --- permanent: the plan refuses ---------------------------------------------------------------
class PlanBlockedError(PermanentError):
    """The plan found blockers (PDB with no headroom, pod tolerating the taint, ...)."""


# --- permanent: waits that ran out of time ------------------------------------------------------
class NewNodesTimeoutError(PermanentError):
    """Surge instances did not become Ready Kubernetes nodes before the deadline."""


class DrainTimeoutError(PermanentError):
    """Pods on a node could not be evicted before the deadline (names pod and PDB)."""


class OwnersNotReadyError(PermanentError):
    """Workloads whose pods were evicted did not recover before the deadline."""


class DoNotDisruptDeadlineError(PermanentError):
    """A do-not-disrupt pod still ran at its deadline and the setting says stop (names the pod)."""


class RollAbortedError(PermanentError):
    """An operator aborted the roll (`eks-rolling abort` or the ASG tag): it stopped before its
    next wave and rolled back. The message names who asked."""


class RollNotFoundError(PermanentError):
    """`eks-rolling pause|resume|abort` named a roll that is not running (no lock held)."""


class PauseTimeoutError(PermanentError):
    """The roll stayed paused longer than `pause_timeout_s`: it stops and rolls back rather than
    hold the group (cluster-autoscaler off, old nodes tainted) for ever."""


class HealthAlarmError(PermanentError):
    """A health alarm (setting `health_alarms`, tag `eks-rolling/health-alarms`) was in ALARM
    while a wave baked or before the next one: the roll stops and rolls back (and, with
    `revert_on_alarm`, points the ASG back at its previous launch template version). The message
    names the alarm."""


class HistoryBudgetExceededError(PermanentError):
    """A polling loop used every round its wave allows: the wave stops (and the roll rolls back)
    well before the execution could reach Step Functions' 25,000-event limit, where no Catch runs."""


# --- permanent: unsafe situations ---------------------------------------------------------------
class MultiplePdbError(PermanentError):
    """The eviction API answered 500: a pod is matched by more than one PodDisruptionBudget."""


class EvictionRejectedError(PermanentError):
    """The eviction API refused a pod for a reason retrying will not fix (403, 422, ...)."""


class NodeNotFoundError(PermanentError):
    """An instance that should be a node has no Node object (providerID mismatch)."""


class CapacityError(PermanentError):
    """The Auto Scaling group cannot surge (max size, or raising max is not allowed)."""


class RedisGroupUnhealthyError(PermanentError):
    """A Redis group is not healthy enough to move safely (no quorum, replica not synced...)."""


class RedisMoveTimeoutError(PermanentError):
    """A Redis pod's move did not reach its next phase before the deadline (names pod and phase)."""


class RedisSwitchoverError(PermanentError):
    """A failover did not end with exactly one master where it was meant to be."""


class RedisTempNodeError(PermanentError):
    """The temporary Redis Cluster node could not be created or placed safely (names the pod)."""


class HookFailedError(PermanentError):
    """A pre-drain or post-replace hook still failed after its retries (names the hook, the node
    and its last answer): the roll stops, and Rollback restores what it paused."""


class LockHolderUnknownError(PermanentError):
    """The lock is held by an execution that cannot be described, so it is not taken over."""


class LockLostError(PermanentError):
    """The lock this execution held is now owned by someone else."""


RETRYABLE_ERRORS: tuple[type[RetryableError], ...] = (
    KubeApiUnavailableError,
    AwsThrottledError,
    ConflictError,
)


def error_names(base: type[EksRollingError]) -> list[str]:
    """Concrete error class names under `base` (what the ASL must list)."""
    out: list[str] = []
    stack: list[type[EksRollingError]] = list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        out.append(cls.__name__)
        stack.extend(cls.__subclasses__())
    return sorted(out)
