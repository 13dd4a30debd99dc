"""Kubernetes API errors as `metav1.Status` bodies (apimachinery pkg/api/errors/errors.go)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        }
        # metav1.Status.Reason is omitempty: a Status built without one (e.g. the eviction
        # handler's multiple-PDB 500, turned into an error by finisher.go) carries no reason.
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(qualified: str, name: str) -> ApiError:
    kind = qualified.split(".", 1)
    details = {"name": name, "kind": kind[0]}
    if len(kind) == 2:
        details["group"] = kind[1]
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found', details)


def already_exists(qualified: str, name: str) -> ApiError:
    kind = qualified.split(".", 1)
    return ApiError(
        409, "AlreadyExists", f'{qualified} "{name}" already exists', {"name": name, "kind": kind[0]}
    )


def conflict(qualified: str, name: str, why: str | None = None) -> ApiError:
    msg = why or "the object has been modified; please apply your changes to the latest version and try again"
    kind = qualified.split(".", 1)
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified} "{name}": {msg}',
        {"name": name, "kind": kind[0]},
    )


def forbidden(qualified: str, name: str, why: str) -> ApiError:
    """apimachinery errors.NewForbidden(qualifiedResource, name, err)."""
    resource, _, group = qualified.partition(".")
    details = {"name": name, "group": group, "kind": resource} if group else {"name": name, "kind": resource}
    return ApiError(403, "Forbidden", f'{qualified} "{name}" is forbidden: {why}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(kind: str, name: str, causes: list[dict[str, str]]) -> ApiError:
    text = "; ".join(f"{c['field']}: {c['message']}" for c in causes)
    return ApiError(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {text}',
        {
            "name": name,
            "kind": kind,
            "causes": [{"reason": c.get("reason", "FieldValueInvalid"), **c} for c in causes],
        },
    )


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media(content_type: str, accepted: tuple[str, ...] | None = None) -> ApiError:
    """negotiation.NewUnsupportedMediaTypeError: 415 listing what the endpoint accepts. Without
    `accepted`, the patch types (handlers/patch.go)."""
    if accepted is None:
        return ApiError(
            415,
            "UnsupportedMediaType",
            f'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got "{content_type}"',
        )
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)
