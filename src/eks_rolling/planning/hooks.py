"""Per-node hooks: which targets, the payload they get, when to try again, and what an answer
means. Pure: no I/O, no clock (the service passes elapsed time in; the adapters do the calls).

A target is a Lambda function ARN (invoked RequestResponse) or an `https://` URL (a POST signed
with SigV4). `pre_drain` hooks run for a node after it is tainted and its managed Redis pods are
moved (switchovers: deleted and recreated, never evicted), before its first eviction;
`post_replace` hooks after its instance is terminated (the owners of its evicted pods were Ready
again before that). A hook that still fails after its retries stops the roll (HookFailedError).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

Phase = Literal["pre_drain", "post_replace"]
PHASES: Final[tuple[Phase, ...]] = ("pre_drain", "post_replace")

# A function ARN, optionally with a version or alias (Lambda's own FunctionName pattern).
LAMBDA_ARN: Final = re.compile(
    r"arn:aws[a-z-]*:lambda:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:function:[A-Za-z0-9_-]{1,64}(?::[A-Za-z0-9$_-]{1,128})?"
)
_SEPARATORS: Final = re.compile(r"[\s,;]+")
# The answer kept in the history and in the error: enough to see why, never a whole body.
ANSWER_CHARS: Final = 300
# HTTP answers worth another try: the endpoint is busy or briefly unavailable.
RETRY_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


class HookError(ValueError):
    """A hook target is neither a Lambda function ARN nor an https:// URL (names it)."""


def parse_hooks(text: str) -> tuple[str, ...]:
    """Targets separated by commas, semicolons or spaces, in the order they run."""
    targets = tuple(t for t in _SEPARATORS.split(text.strip()) if t)
    for t in targets:
        kind_of(t)
    if len(set(targets)) != len(targets):
        raise HookError(f"hook targets {text!r} name the same target twice")
    return targets


def kind_of(target: str) -> Literal["lambda", "https"]:
    if LAMBDA_ARN.fullmatch(target):
        return "lambda"
    if target.startswith("https://"):
        parts = urlsplit(target)
        if parts.hostname and not parts.username and not parts.password:
            return "https"
    raise HookError(
        f"hook target {target!r} is neither a Lambda function ARN "
        "(arn:aws:lambda:REGION:ACCOUNT:function:NAME) nor an https:// URL without credentials"
    )


def lambda_region(arn: str) -> str:
    return arn.split(":")[3]


def payload(phase: Phase, *, roll: str, asg: str, node: str | None, instance_id: str, az: str) -> bytes:
    """The JSON every hook target receives, Lambda and HTTPS alike."""
    body = {"phase": phase, "roll": roll, "asg": asg, "node": node, "instance_id": instance_id, "az": az}
    return json.dumps(body, sort_keys=True).encode()


@dataclass(frozen=True)
class Answer:
    ok: bool
    detail: str
    retry: bool = False  # a failure another attempt may fix


def _short(body: bytes | str) -> str:
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= ANSWER_CHARS else text[: ANSWER_CHARS - 3] + "..."


def classify_lambda(function_error: str | None, body: bytes) -> Answer:
    """A function error (it raised, timed out, ran out of memory) is a failure worth retrying;
    `{"ok": false, ...}` is the hook's own no, final; anything else is a yes."""
    if function_error:
        return Answer(False, f"FunctionError {function_error}: {_short(body)}", retry=True)
    try:
        data: Any = json.loads(body) if body.strip() else None
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("ok") is False:
        return Answer(False, f"answered ok=false: {_short(body)}")
    return Answer(True, _short(body) or "ok")


def classify_http(status: int, body: bytes) -> Answer:
    """2xx is a yes; 408/425/429/5xx may pass on another try; any other status is a final no
    (a 403 is a signature or permission problem that retrying will not fix)."""
    detail = f"HTTP {status}: {_short(body)}".rstrip(": ")
    if 200 <= status < 300:
        return Answer(True, detail)
    return Answer(False, detail, retry=status in RETRY_STATUSES)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts of one target, each with `timeout_s`, all within `deadline_s` of the first."""

    attempts: int
    timeout_s: float
    deadline_s: float
    backoff_s: float
    backoff_cap_s: float

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt `attempt` (1-based): doubles, capped."""
        return float(min(self.backoff_cap_s, self.backoff_s * 2 ** max(attempt - 1, 0)))

    def next_delay(self, attempt: int, elapsed_s: float, answer: Answer) -> float | None:
        """The pause before another attempt, or None: the answer is final, the attempts are
        spent, or the pause would leave less than a second of the deadline for the attempt."""
        if answer.ok or not answer.retry or attempt >= self.attempts:
            return None
        pause = self.delay(attempt)
        if elapsed_s + pause + 1.0 > self.deadline_s:
            return None
        return pause

    def attempt_timeout(self, elapsed_s: float) -> float:
        """An attempt never runs past the deadline: the last one gets what is left."""
        return max(min(self.timeout_s, self.deadline_s - elapsed_s), 1.0)
