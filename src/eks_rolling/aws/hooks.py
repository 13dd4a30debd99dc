"""Calling one hook target once: Lambda Invoke (RequestResponse) or an HTTPS POST signed with
SigV4 (botocore's SigV4Auth, as API Gateway's IAM authorization expects). Retries are the
service's (eks_rolling.services.hooks), so these clients make exactly one attempt each.
"""

from __future__ import annotations

import logging
import ssl
import urllib.error
import urllib.request
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from eks_rolling.planning.hooks import Answer, classify_http, classify_lambda, kind_of, lambda_region
from eks_rolling.settings import Settings

from .clients import error_code, is_transient

log = logging.getLogger(__name__)


class HookCaller:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def call(self, target: str, body: bytes, timeout_s: float) -> Answer:
        if kind_of(target) == "lambda":
            return self._invoke(target, body, timeout_s)
        return self._post(target, body, timeout_s)

    def _invoke(self, arn: str, body: bytes, timeout_s: float) -> Answer:
        s = self.settings
        client: Any = boto3.session.Session().client(
            "lambda",
            region_name=lambda_region(arn),
            endpoint_url=s.aws_endpoint_url,
            # One attempt: the hook's own retry policy decides about the next one.
            config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=min(timeout_s, 10),
                read_timeout=timeout_s,
            ),
        )
        try:
            resp = client.invoke(FunctionName=arn, InvocationType="RequestResponse", Payload=body)
        except ClientError as exc:
            return Answer(False, f"Lambda {error_code(exc)}: {exc}", retry=is_transient(exc))
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            return Answer(False, f"no answer within {timeout_s:g} s ({type(exc).__name__})", retry=True)
        except BotoCoreError as exc:
            return Answer(False, f"{type(exc).__name__}: {exc}", retry=True)
        return classify_lambda(resp.get("FunctionError"), resp["Payload"].read())

    def _post(self, url: str, body: bytes, timeout_s: float) -> Answer:
        s = self.settings
        creds = boto3.session.Session().get_credentials()
        if creds is None:
            return Answer(False, "no AWS credentials to sign the request with")
        request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(creds.get_frozen_credentials(), s.hook_signing_service, s.region).add_auth(request)
        prepared = urllib.request.Request(
            url, data=body, method="POST", headers=dict(request.headers.items())
        )
        context = ssl.create_default_context(cafile=s.hook_ca_file)
        try:
            with urllib.request.urlopen(prepared, timeout=timeout_s, context=context) as resp:
                return classify_http(resp.status, resp.read())
        except urllib.error.HTTPError as exc:
            return classify_http(exc.code, exc.read())
        except TimeoutError as exc:
            return Answer(False, f"no answer within {timeout_s:g} s ({exc})", retry=True)
        except urllib.error.URLError as exc:
            # Refused, reset, DNS or TLS: a certificate the CA bundle does not trust will not
            # become trusted on another try, anything else might.
            final = isinstance(exc.reason, ssl.SSLCertVerificationError)
            return Answer(False, f"{type(exc.reason).__name__}: {exc.reason}", retry=not final)
        except OSError as exc:
            return Answer(False, f"{type(exc).__name__}: {exc}", retry=True)
