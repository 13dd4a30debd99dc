"""The runtime history guard: no polling loop of a wave polls past its cap.

A wave (child execution) is planned (planning.waves) so that ALL of its polling loops, each at
`round_scale` x its measured rounds, still stay under HISTORY_GUARD_EVENTS (20,000 of the 25,000
an execution may write). The loop Tasks get `round_scale` and their previous round (a PollState);
the step runtime calls `check_rounds` before the service runs, so a loop that would poll once more
past its cap stops the wave with a named error that the parent catches (Rollback and restore),
instead of the execution dying at 25,000 events, where no Catch runs.
"""

from __future__ import annotations

from pydantic import BaseModel

from .errors import HistoryBudgetExceededError
from .models import DrainNodeInput, MoveRedisPodsInput, PollState
from .planning.waves import assumed_rounds, drain_rounds, redis_rounds


def previous_round(inp: BaseModel) -> PollState | None:
    for name in type(inp).model_fields:
        value = getattr(inp, name)
        if isinstance(value, PollState):
            return value
    return None


def round_cap(inp: BaseModel, scale: int) -> int:
    node = getattr(inp, "node", None)
    if isinstance(inp, MoveRedisPodsInput):
        return scale * redis_rounds(inp.node)
    if isinstance(inp, DrainNodeInput):
        return scale * drain_rounds(inp.node)
    return scale * assumed_rounds(node)


def check_rounds(inp: BaseModel, step: str) -> None:
    scale = getattr(inp, "round_scale", None)
    prev = previous_round(inp)
    if scale is None or prev is None:
        return
    cap = round_cap(inp, scale)
    if prev.attempt < cap:
        return
    raise HistoryBudgetExceededError(
        f"{step} polled {prev.attempt} rounds, its cap in this wave ({cap}): the wave stops before its "
        f"history nears the 25,000-event limit; still pending: {'; '.join(prev.detail[:5]) or 'unknown'}"
    )
