"""PreDrainHooks and PostReplaceHooks: call each of the node's hooks in order, retrying a failing
one within its deadline; a hook that still fails stops the roll with HookFailedError (the wave
fails, the roll's Catch runs Rollback). Which hooks apply is decided by PlanRoll (`hooks_for`):
the plan shows them and the wave's Choice states skip these steps when there are none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Final

from ..errors import HookFailedError, SettingsError
from ..labels import TAG_POST_REPLACE_HOOKS, TAG_PRE_DRAIN_HOOKS
from ..models import (
    HookCall,
    Hooks,
    HooksInput,
    PostReplaceHooksInput,
    PostReplaceHooksOutput,
    PreDrainHooksInput,
    PreDrainHooksOutput,
)
from ..planning.hooks import Answer, HookError, Phase, RetryPolicy, parse_hooks, payload
from ..settings import Settings
from ..steps import LAMBDA_TIMEOUT_S
from .deps import Deps

log = logging.getLogger(__name__)

Call = Callable[[str, bytes, float], Answer]
# All hooks of one step share its Lambda's time, less a margin to answer: a step that timed out
# would be retried by the state machine and call the hooks that already passed again.
STEP_BUDGET_S: Final = LAMBDA_TIMEOUT_S - 30


def hooks_for(settings: Settings, tags: Mapping[str, str]) -> Hooks:
    """The ASG's hooks: its tag, else the setting, for each phase (SettingsError on a bad tag)."""
    found: dict[str, list[str] | str] = {}
    for phase, tag, text in (
        ("pre_drain", TAG_PRE_DRAIN_HOOKS, settings.pre_drain_hooks),
        ("post_replace", TAG_POST_REPLACE_HOOKS, settings.post_replace_hooks),
    ):
        source = f"tag {tag}" if tag in tags else f"setting {phase}_hooks"
        try:
            targets = parse_hooks(tags.get(tag, text))
        except HookError as exc:
            raise SettingsError(f"{source}: {exc}") from None
        found[phase] = list(targets)
        found[f"{phase}_from"] = source if targets else ""
    return Hooks.model_validate(found)


def policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        attempts=settings.hook_attempts,
        timeout_s=settings.hook_timeout_s,
        deadline_s=settings.hook_deadline_s,
        backoff_s=settings.hook_backoff_s,
        backoff_cap_s=settings.hook_backoff_cap_s,
    )


def call_hook(target: str, body: bytes, rules: RetryPolicy, call: Call, deps: Deps) -> HookCall:
    """Attempts of one target until it says yes, says a final no, or its policy is spent."""
    started = deps.monotonic()
    attempt = 0
    while True:
        attempt += 1
        answer = call(target, body, rules.attempt_timeout(deps.monotonic() - started))
        elapsed = deps.monotonic() - started
        pause = rules.next_delay(attempt, elapsed, answer)
        if pause is None:
            return HookCall(
                target=target,
                ok=answer.ok,
                attempts=attempt,
                answer=answer.detail,
                duration_s=round(elapsed, 3),
            )
        log.warning("hook %s attempt %d failed (%s); again in %.1f s", target, attempt, answer.detail, pause)
        deps.sleep(pause)


def run_hooks(phase: Phase, inp: HooksInput, deps: Deps, call: Call | None = None) -> list[HookCall]:
    ctx, node = inp.ctx, inp.node
    try:
        targets = parse_hooks(" ".join(inp.hooks))
    except HookError as exc:
        raise SettingsError(f"{phase} hooks: {exc}") from None
    body = payload(
        phase,
        roll=ctx.execution_id,
        asg=ctx.asg_name,
        node=node.node_name,
        instance_id=node.instance_id,
        az=node.az,
    )
    rules = policy(deps.settings)
    caller = call or deps.hooks.call
    calls: list[HookCall] = []
    started = deps.monotonic()
    for target in targets:
        left = STEP_BUDGET_S - (deps.monotonic() - started)
        done = call_hook(target, body, replace(rules, deadline_s=min(rules.deadline_s, left)), caller, deps)
        calls.append(done)
        if not done.ok:
            raise HookFailedError(
                f"{phase} hook {target} failed for node {node.node_name or node.instance_id} "
                f"({node.instance_id}) after {done.attempts} attempt(s) in {done.duration_s:g} s: "
                f"{done.answer}"
            )
        log.info("%s hook %s ok for %s in %d attempt(s)", phase, target, node.instance_id, done.attempts)
    return calls


def pre_drain_hooks(inp: PreDrainHooksInput, deps: Deps) -> PreDrainHooksOutput:
    return PreDrainHooksOutput(phase="pre_drain", calls=run_hooks("pre_drain", inp, deps))


def post_replace_hooks(inp: PostReplaceHooksInput, deps: Deps) -> PostReplaceHooksOutput:
    return PostReplaceHooksOutput(phase="post_replace", calls=run_hooks("post_replace", inp, deps))
