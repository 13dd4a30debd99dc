"""CheckGate, before every wave: read the operator's control (the lock item, the ASG tag) and the
maintenance windows (the ASG tag, else the setting), renew the lock, and let planning.gate decide.
After a wave (`rolled`), the health gate: the CloudWatch alarms must stay OK for the bake time.

Also the operator's side: `eks-rolling pause|resume|abort` store the control on the lock item.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ..errors import InvalidInputError, SettingsError
from ..labels import TAG_CONTROL, TAG_HEALTH_ALARMS, TAG_MAINTENANCE_WINDOWS
from ..models import AwaitWindowInput, AwaitWindowOutput, CheckGateInput, CheckGateOutput, Control
from ..planning.gate import GateRules, bake, check_health, decide
from ..planning.windows import Window, WindowError, parse_windows, window_state
from ..settings import Settings
from .deps import Deps

log = logging.getLogger(__name__)

CONTROLS = ("pause", "resume", "abort")


def windows_for(settings: Settings, tags: Mapping[str, str]) -> tuple[tuple[Window, ...], str, str]:
    """(windows, their text, where it came from): the ASG's tag wins over the setting. A tag that
    does not parse is InvalidInputError, a setting SettingsError, each naming the bad part."""
    if TAG_MAINTENANCE_WINDOWS in tags:
        text, source = tags[TAG_MAINTENANCE_WINDOWS], f"tag {TAG_MAINTENANCE_WINDOWS}"
    else:
        text, source = settings.maintenance_windows, "setting maintenance_windows"
    try:
        return parse_windows(text), text.strip(), source if text.strip() else ""
    except WindowError as exc:
        error = InvalidInputError if source.startswith("tag") else SettingsError
        raise error(f"{source}: {exc}") from None


def alarms_for(settings: Settings, tags: Mapping[str, str]) -> tuple[list[str], str]:
    """(alarm names, where they came from): the ASG's tag wins over the setting."""
    if TAG_HEALTH_ALARMS in tags:
        text, source = tags[TAG_HEALTH_ALARMS], f"tag {TAG_HEALTH_ALARMS}"
    else:
        text, source = settings.health_alarms, "setting health_alarms"
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    return names, source if names else ""


def check_alarms_exist(settings: Settings, tags: Mapping[str, str], deps: Deps) -> list[str]:
    """PlanRoll's check, before anything changes: every named alarm exists (a typo would make the
    gate halt the roll after its first wave). SettingsError (InvalidInputError for the tag)."""
    names, source = alarms_for(settings, tags)
    missing = [n for n in names if n not in deps.alarms.states(names)] if names else []
    if missing:
        error = InvalidInputError if source.startswith("tag") else SettingsError
        raise error(f"{source}: no CloudWatch alarm named {', '.join(repr(n) for n in missing)}")
    return names


def firing_alarms(names: list[str], deps: Deps) -> list[str]:
    """Alarms in ALARM, and alarms that no longer exist (health cannot be shown), described."""
    if not names:
        return []
    states = deps.alarms.states(names)
    out = []
    for n in names:
        a = states.get(n)
        if a is None:
            out.append(f"{n}: the alarm no longer exists")
        elif a.state == "ALARM":
            out.append(f"{n}: {a.reason or 'ALARM'}")
    return out


def control_of(lock: tuple[str, str] | None, tags: Mapping[str, str], asg_name: str) -> Control | None:
    """The effective control: the stronger of the lock item's and the tag's (abort > pause >
    resume), so a console user's tag and a CLI user's command never undo each other silently."""
    found = []
    if lock is not None and lock[0] in CONTROLS:
        found.append(Control(action=lock[0], by=lock[1]))  # type: ignore[arg-type]
    tag = tags.get(TAG_CONTROL, "").strip().lower()
    if tag and tag not in CONTROLS:
        raise InvalidInputError(
            f"tag {TAG_CONTROL} on {asg_name} is {tag!r}: expected pause, resume or abort"
        )
    if tag:
        found.append(Control(action=tag, by=f"tag {TAG_CONTROL} on {asg_name}"))  # type: ignore[arg-type]
    if not found:
        return None
    return max(found, key=lambda c: CONTROLS.index(c.action) if c.action != "resume" else -1)


def await_window(inp: AwaitWindowInput, deps: Deps) -> AwaitWindowOutput:
    """The same gate before PauseAutoscaler: a roll triggered outside its windows (or paused
    before it began) waits with nothing paused or tainted yet."""
    out = check_gate(CheckGateInput(ctx=inp.ctx, wave="the roll's start", gate=inp.gate), deps)
    return AwaitWindowOutput(**out.model_dump())


def check_gate(inp: CheckGateInput, deps: Deps) -> CheckGateOutput:
    ctx, s = inp.ctx, deps.settings
    now = deps.now()
    lock = deps.lock.hold(ctx.asg_name, ctx.execution_id, ttl_s=s.lock_ttl_s, now=now.timestamp())
    tags = deps.asg.tags(ctx.asg_name)
    firing = firing_alarms(alarms_for(s, tags)[0], deps)
    if inp.rolled:
        control = control_of(lock, tags, ctx.asg_name)
        state = bake(firing, inp.wave, now, inp.gate, inp.bake_s, s.health_poll_s, control)
        log.info("health gate after %s: %s (%s)", inp.wave, state.action, state.message)
        return CheckGateOutput(**state.model_dump())
    check_health(firing, inp.wave)  # an alarm that fired while the roll waited also stops it
    control = control_of(lock, tags, ctx.asg_name)
    windows, text, _ = windows_for(s, tags)
    rules = GateRules(s.pause_timeout_s, s.pause_reminder_s, s.gate_poll_s)
    state, notice = decide(control, window_state(windows, now), now, inp.gate, rules)
    log.info("gate before %s: %s (%s)", inp.wave, state.action, state.message)
    if notice is not None:
        deps.notifier.publish(
            notice,
            f"eks-rolling: roll of {ctx.asg_name} {notice}",
            {
                "asg": ctx.asg_name,
                "execution": ctx.execution_id,
                "wave": inp.wave,
                "message": state.message,
                "windows": text,
            },
        )
    return CheckGateOutput(**state.model_dump())


def set_control(asg_name: str, action: str, by: str, deps: Deps) -> str:
    """The CLI's pause / resume / abort: stored on the running roll's lock item; CheckGate acts
    on it before the next wave. Returns the roll's execution."""
    if action not in CONTROLS:
        raise InvalidInputError(f"control {action!r}: expected pause, resume or abort")
    return deps.lock.set_control(asg_name, action, by=by, now=deps.wall())
