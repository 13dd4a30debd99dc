"""Secrets Manager: a Redis password by ARN (a plain string, or JSON with a `password` key)."""

from __future__ import annotations

import json
from typing import Any

from .clients import aws_errors


def secret_password(sm_client: Any, arn: str) -> str:
    with aws_errors():
        value: str = sm_client.get_secret_value(SecretId=arn)["SecretString"]
    try:
        doc = json.loads(value)
    except ValueError:
        return value
    return str(doc.get("password", value)) if isinstance(doc, dict) else value
