"""The hook steps' services with their real adapter (Deps.hooks) against the sandbox's HTTPS hook
endpoint: a verified call passes; a failing endpoint is called hook_attempts times, then the step
raises HookFailedError with the endpoint's last answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eks_rolling.errors import HookFailedError
from eks_rolling.models import NodeTarget, PostReplaceHooksInput, PreDrainHooksInput, RollContext
from eks_rolling.services.deps import Deps
from eks_rolling.services.hooks import post_replace_hooks, pre_drain_hooks
from eks_rolling.settings import Settings
from eks_rolling_sandbox.cloud.hooks import HttpsHookServer
from tests.factories.hooks import https_hook_server

CTX = RollContext(execution_id="run-1", asg_name="ng", cluster_name="c", taint_value="run-1")
NODE = NodeTarget(instance_id="i-0abc", node_name="ip-10-0-1-1", az="us-east-1a")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpsHookServer]:
    with https_hook_server(tmp_path, monkeypatch) as s:
        yield s


def deps(server: HttpsHookServer) -> Deps:
    return Deps(
        Settings(region="us-east-1", hook_ca_file=str(server.tls.ca), hook_attempts=3, hook_backoff_s=0.05)
    )


def test_a_passing_hook_is_recorded_in_the_steps_output(server: HttpsHookServer) -> None:
    out = post_replace_hooks(PostReplaceHooksInput(ctx=CTX, node=NODE, hooks=[server.url]), deps(server))
    assert out.phase == "post_replace"
    (call,) = out.calls
    assert (call.target, call.ok, call.attempts) == (server.url, True, 1) and "HTTP 200" in call.answer
    assert [c.verified for c in server.recorder.calls] == [True]
    assert server.recorder.bodies()[0]["node"] == "ip-10-0-1-1"


def test_a_failing_hook_is_tried_hook_attempts_times_then_stops_the_roll(server: HttpsHookServer) -> None:
    server.recorder.fail = True
    with pytest.raises(HookFailedError) as err:
        pre_drain_hooks(PreDrainHooksInput(ctx=CTX, node=NODE, hooks=[server.url]), deps(server))
    assert len(server.recorder.calls) == 3
    assert "after 3 attempt(s)" in str(err.value) and "HTTP 503" in str(err.value)
