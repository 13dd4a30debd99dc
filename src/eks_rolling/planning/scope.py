"""Which outdated instances a roll may touch (scope) and which pods hold their node
(do-not-disrupt), pure: the plan shows both, DrainNode applies the same rules live."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..labels import EXCLUDE_NODE
from .selectors import selector_matches
from .snapshot import InstanceView, NodeView, PodView, Scope

TRUE = "true"


@dataclass(frozen=True)
class Decision:
    instance: InstanceView
    node: NodeView | None
    reason: str  # why it is out; "" when in


def scope_decisions(
    instances: list[InstanceView], nodes: dict[str, NodeView], scope: Scope
) -> list[Decision]:
    """Each instance with why it is out of scope ("" when in). An instance with no node can only
    be selected by id: a label selector cannot see it."""
    out = []
    for inst in instances:
        node = nodes.get(inst.instance_id)
        out.append(Decision(inst, node, _why_out(inst, node, scope)))
    return out


def _why_out(inst: InstanceView, node: NodeView | None, scope: Scope) -> str:
    labels = node.labels if node else {}
    src = scope.source
    if node is not None and (
        node.annotations.get(EXCLUDE_NODE) == TRUE or node.labels.get(EXCLUDE_NODE) == TRUE
    ):
        return f"node {node.name} has {EXCLUDE_NODE}=true"
    if scope.instance_ids and inst.instance_id not in scope.instance_ids:
        return f"not in the instance ids ({src.get('instance_ids', 'setting')})"
    if scope.node_selector is not None and (
        node is None or not selector_matches(scope.node_selector, labels)
    ):
        what = "has no node" if node is None else "does not match"
        return f"{what} the node selector ({src.get('node_selector', 'setting')})"
    if (
        scope.exclude_selector is not None
        and node is not None
        and selector_matches(scope.exclude_selector, labels)
    ):
        return f"matches the exclude selector ({src.get('exclude_selector', 'setting')})"
    return ""


# --- do-not-disrupt ---------------------------------------------------------------------------
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class DeadlineError(ValueError):
    """A do-not-disrupt-deadline annotation that is neither a duration nor an RFC 3339 time."""


def parse_deadline(value: str) -> timedelta | datetime:
    """`90s`, `45m`, `2h`, `1h30m` (from the node's drain start) or an RFC 3339 time."""
    v = value.strip()
    m = _DURATION.match(v)
    if v and m and any(m.groups()):
        h, mi, s = (int(g or 0) for g in m.groups())
        return timedelta(hours=h, minutes=mi, seconds=s)
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise DeadlineError(f"{value!r} is neither a duration (90s, 45m, 2h) nor an RFC 3339 time") from None
    if t.tzinfo is None:
        raise DeadlineError(f"{value!r} has no time zone")
    return t


def deadline_of(pod: PodView, drain_started: datetime, default_s: int) -> datetime:
    """When `pod` stops holding its node; a bad annotation falls back to the setting (the plan
    already reported it as a blocker)."""
    try:
        d = parse_deadline(pod.disrupt_deadline) if pod.disrupt_deadline else timedelta(seconds=default_s)
    except DeadlineError:
        d = timedelta(seconds=default_s)
    return drain_started + d if isinstance(d, timedelta) else d


def describe_deadline(pod: PodView, default_s: int) -> str:
    if pod.disrupt_deadline:
        d = parse_deadline(pod.disrupt_deadline)
        return (
            f"{pod.disrupt_deadline} after its node's drain starts"
            if isinstance(d, timedelta)
            else d.isoformat()
        )
    return f"{default_s}s after its node's drain starts (setting)"


def hold_wait_s(rounds: int, poll_s: int, cap_s: int) -> int:
    """The wait after the `rounds`-th check of a node held by do-not-disrupt pods: doubles from
    the poll interval up to the cap, so a long job costs a few dozen rounds, not one per poll."""
    return max(1, min(cap_s, poll_s << min(rounds, 30)))


def hold_rounds(timeout_s: int, poll_s: int, cap_s: int) -> int:
    """Checks a node held for `timeout_s` needs at most (the plan's history budget)."""
    n, waited = 0, 0
    while waited < timeout_s:
        waited += hold_wait_s(n, poll_s, cap_s)
        n += 1
    return n + 1


def seconds_of(value: str | None, default_s: int, now: datetime | None) -> int:
    """A deadline's length in seconds for the budget (an absolute time counts from `now`, the
    snapshot's time; without one, the setting's length)."""
    if not value:
        return default_s
    try:
        d = parse_deadline(value)
    except DeadlineError:
        return default_s
    if isinstance(d, timedelta):
        return int(d.total_seconds())
    return max(0, math.ceil((d - now).total_seconds())) if now else default_s
