"""Hooks, the pure parts: which targets are valid, the payload, what an answer means, and the
retry policy that bounds the calls of a failing hook."""

from __future__ import annotations

import json

import pytest

from eks_rolling.planning.hooks import (
    Answer,
    HookError,
    RetryPolicy,
    classify_http,
    classify_lambda,
    kind_of,
    lambda_region,
    parse_hooks,
    payload,
)

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:pre-drain-check"
URL = "https://hooks.example.com/prod/node-retiring"


def test_targets_are_lambda_arns_or_https_urls_in_order() -> None:
    assert parse_hooks(f" {ARN}, {URL};{ARN}:live ") == (ARN, URL, f"{ARN}:live")
    assert parse_hooks("") == ()
    assert kind_of(ARN) == "lambda" and kind_of(URL) == "https"
    assert lambda_region(ARN) == "eu-west-1"


@pytest.mark.parametrize(
    "bad",
    [
        "http://hooks.example.com/x",  # unsigned transport: never
        "https://user:pw@hooks.example.com/x",  # credentials in the URL would land in the history
        "arn:aws:lambda:eu-west-1:123456789012:layer:x",
        "pre-drain-check",  # a bare name: which account, which region?
    ],
)
def test_anything_else_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(HookError, match="neither a Lambda function ARN"):
        parse_hooks(f"{ARN},{bad}")


def test_the_same_target_twice_is_refused() -> None:
    with pytest.raises(HookError, match="twice"):
        parse_hooks(f"{ARN} {ARN}")


def test_payload_has_exactly_the_documented_keys() -> None:
    body = json.loads(
        payload("pre_drain", roll="r1", asg="ng", node="ip-1", instance_id="i-1", az="us-east-1a")
    )
    assert body == {
        "phase": "pre_drain",
        "roll": "r1",
        "asg": "ng",
        "node": "ip-1",
        "instance_id": "i-1",
        "az": "us-east-1a",
    }


def test_lambda_answers() -> None:
    assert classify_lambda(None, b'{"ok": true}').ok
    assert classify_lambda(None, b"null").ok  # a handler returning nothing said yes
    no = classify_lambda(None, b'{"ok": false, "reason": "node hosts the leader"}')
    assert not no.ok and not no.retry and "node hosts the leader" in no.detail  # its own no: final
    raised = classify_lambda("Unhandled", b'{"errorType": "RuntimeError", "errorMessage": "db down"}')
    assert not raised.ok and raised.retry and "db down" in raised.detail


def test_http_answers() -> None:
    assert classify_http(204, b"").ok
    assert classify_http(200, b'{"ok": true}').ok
    for status in (429, 500, 502, 503, 504):
        answer = classify_http(status, b"busy")
        assert not answer.ok and answer.retry, status
    denied = classify_http(403, b'{"message": "The request signature we calculated does not match"}')
    assert not denied.ok and not denied.retry and "403" in denied.detail


def test_a_long_answer_is_shortened_for_the_history() -> None:
    assert len(classify_http(500, b"x" * 10_000).detail) < 320


RULES = RetryPolicy(attempts=4, timeout_s=30, deadline_s=120, backoff_s=2, backoff_cap_s=5)
FAILED = Answer(False, "HTTP 503", retry=True)


def test_pauses_double_up_to_the_cap() -> None:
    assert [RULES.delay(a) for a in (1, 2, 3, 4)] == [2, 4, 5, 5]


def test_retries_stop_at_the_attempts_the_deadline_or_a_final_answer() -> None:
    assert RULES.next_delay(1, 0.5, FAILED) == 2
    assert RULES.next_delay(4, 10, FAILED) is None  # attempts spent
    assert RULES.next_delay(2, 117.5, FAILED) is None  # the pause would reach the deadline
    assert RULES.next_delay(1, 0.5, Answer(False, "HTTP 403")) is None  # final no
    assert RULES.next_delay(1, 0.5, Answer(True, "ok")) is None


def test_an_attempt_never_runs_past_the_deadline() -> None:
    assert RULES.attempt_timeout(0) == 30
    assert RULES.attempt_timeout(110) == 10
    assert RULES.attempt_timeout(125) == 1.0  # the floor: a call needs some time at all
