"""The sandbox's Kubernetes API server: HTTP/1.1 on 127.0.0.1, one thread per connection.

Upstream: the request handlers of staging/src/k8s.io/apiserver/pkg/endpoints/handlers (get, list,
watch, create, update, patch, delete) and the discovery documents kubectl reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from . import proto as k8s_proto
from .errors import ApiError, bad_request, method_not_allowed, not_found, unsupported_media
from .faults import Faults, LoggedRequest, RequestLog
from .objects import KUBELET_VERSION
from .registry import PATCH_TYPES, Registry
from .resources import BY_GROUP_PLURAL, GROUP_VERSIONS, RESOURCES, Resource
from .store import Obj
from .tables import to_table

log = logging.getLogger(__name__)

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": KUBELET_VERSION,
    "gitCommit": "113cf36c7dd6fb1d4ab16e15e1dc2cd1e1cf8c67",
    "gitTreeState": "clean",
    "buildDate": "2025-07-22T19:23:05Z",
    "goVersion": "go1.23.10",
    "compiler": "gc",
    "platform": "linux/amd64",
}


# A missing Content-Type on POST/PUT is JSON (handlers/negotiation: the first supported type); the
# python client v37 sends none on the eviction POST.
BODY_TYPES = {"", "application/json", "*/*"}


def _discovery_resources(group: str, version: str) -> list[Obj]:
    out: list[Obj] = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        out.append(
            {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": list(
                    ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
                ),
                **({"shortNames": list(r.short_names)} if r.short_names else {}),
            }
        )
        for sub in r.subresources:
            entry: Obj = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }
            if sub == "eviction":
                # kubectl's CheckEvictionSupport needs group and version on this entry.
                entry.update(kind="Eviction", group="policy", version="v1", verbs=["create"])
            elif sub == "scale":
                entry.update(kind="Scale", group="autoscaling", version="v1")
            elif sub == "binding":
                entry.update(kind="Binding", verbs=["create"])
            out.append(entry)
    return out


def _openapi_v3(gv_path: str) -> Obj:
    """A minimal OpenAPI v3 (kube-openapi handler3): the root lists one document per group
    version; each document has the PATCH operation of every resource, tagged with its
    x-kubernetes-group-version-kind and the `fieldValidation` query parameter. That is what
    kubectl's QueryParamVerifierV3 looks for to leave validation to the server (`kubectl apply`
    with the default --validate=strict); without it kubectl wants the full v2 schema. Schemas are
    not served (`kubectl explain` is not supported)."""
    gvs = [("", "v1"), *GROUP_VERSIONS]

    def key(g: str, v: str) -> str:
        return f"apis/{g}/{v}" if g else f"api/{v}"

    if not gv_path:
        return {
            "paths": {
                key(g, v): {"serverRelativeURL": f"/openapi/v3/{key(g, v)}?hash={VERSION_INFO['gitCommit']}"}
                for g, v in gvs
            }
        }
    match = next(((g, v) for g, v in gvs if key(g, v) == gv_path), None)
    if match is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    group, version = match
    paths: Obj = {}
    for r in RESOURCES:
        if (r.group, r.version) != match:
            continue
        base = f"/{key(group, version)}" + ("/namespaces/{namespace}" if r.namespaced else "")
        paths[f"{base}/{r.plural}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                    for n in ("dryRun", "fieldManager", "fieldValidation")
                ],
                "responses": {"200": {"description": "OK"}},
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION_INFO["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }


class _Route:
    __slots__ = ("name", "namespace", "resource", "sub")

    def __init__(self, resource: Resource, namespace: str | None, name: str | None, sub: str | None):
        self.resource, self.namespace, self.name, self.sub = resource, namespace, name, sub


def _route(path: str) -> _Route | Obj:
    """Resolve a resource path, or return a discovery document."""
    segs = [unquote(s) for s in path.strip("/").split("/") if s]
    if not segs:
        return {
            "paths": ["/api", "/api/v1", "/apis", "/version"] + [f"/apis/{g}/{v}" for g, v in GROUP_VERSIONS]
        }
    if segs == ["version"]:
        return VERSION_INFO
    if segs[0] == "openapi" and segs[1:2] == ["v3"]:
        return _openapi_v3("/".join(segs[2:]))
    if segs == ["api"]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:443"}],
        }
    if segs == ["apis"]:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                    "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                }
                for g, v in GROUP_VERSIONS
            ],
        }
    if segs[0] == "api" and len(segs) >= 2:
        group, version, rest = "", segs[1], segs[2:]
    elif segs[0] == "apis" and len(segs) >= 3:
        group, version, rest = segs[1], segs[2], segs[3:]
    elif segs[0] == "apis" and len(segs) == 2:
        g = segs[1]
        v = next((v for gg, v in GROUP_VERSIONS if gg == g), None)
        if v is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": g,
            "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
            "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
        }
    else:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if not rest:
        if (group, version) != ("", "v1") and (group, version) not in GROUP_VERSIONS:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": _discovery_resources(group, version),
        }
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    res = BY_GROUP_PLURAL.get((group, plural))
    if res is None or res.version != version or len(rest) > 3:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if namespace is not None and not res.namespaced:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and sub not in res.subresources:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return _Route(res, namespace, name, sub)


def _flag(q: dict[str, list[str]], key: str) -> bool:
    return (q.get(key) or ["false"])[0].lower() in ("true", "1")


def _one(q: dict[str, list[str]], key: str) -> str | None:
    v = q.get(key)
    return v[0] if v else None


class Subresource(Protocol):
    """A POST-only subresource served beside its resource (pods/eviction), wired by the composition
    root so the server and the registry need not import it."""

    def create(self, namespace: str, name: str, body: Obj, *, dry_run: bool = False) -> Obj: ...


class ApiServer:
    def __init__(
        self,
        registry: Registry,
        *,
        subresources: Mapping[str, Subresource] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        watch_max_s: float = 30.0,
        faults: Faults | None = None,
        request_log: RequestLog | None = None,
        token_validator: Callable[[str | None], bool] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.registry = registry
        self.subresources = dict(subresources or {})
        self.ssl_context = ssl_context
        self.faults = faults or Faults()
        self.request_log = request_log or RequestLog()
        self.watch_max_s = watch_max_s
        self.token_validator = token_validator
        self._host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        if isinstance(host, bytes | bytearray):  # typeshed allows bytes; an AF_INET socket gives str
            host = host.decode()
        return f"{'https' if self.ssl_context else 'http'}://{host}:{port}"

    def start(self) -> None:
        server = self
        handler = type("Handler", (_Handler,), {"api": server})
        httpd = ThreadingHTTPServer((self._host, self._port), handler)
        httpd.daemon_threads = True
        if self.ssl_context is not None:
            # Handshake lazily, in each connection's own thread, not in the accept loop.
            httpd.socket = self.ssl_context.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="sandbox-apiserver", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.registry.store.close_watchers()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    api: ApiServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle and the client's
    # delayed ACK stall every small response by ~40 ms.
    disable_nagle_algorithm = True
    server_version = "eks-rolling-sandbox"
    _protobuf = False  # negotiated per request from Accept
    _response_type = "application/json"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # --- plumbing ------------------------------------------------------------------------------
    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query_s = parts.path, parts.query
        query = parse_qs(query_s)
        ctype = self.headers.get("Content-Type")
        body: Any = None
        status = 500
        # Logged just before the response goes out (see _send), so a client that has its answer
        # always finds its request in the log; requests that never get one are logged at the end.
        self._log_entry: Callable[[int], None] | None = lambda code: self.api.request_log.record(
            LoggedRequest(
                time.time(),
                method,
                path,
                query_s,
                ctype,
                body,
                code,
                self.headers.get("User-Agent", ""),
                self._response_type,
            )
        )
        # kubectl's typed clients (`kubectl create deployment`, drain's pod reads) send and
        # prefer protobuf; the answer goes out in the client's first preference it can take.
        self._protobuf = k8s_proto.wants_protobuf(self.headers.get("Accept"))
        self._response_type = "application/json"
        try:
            raw = self._read_body()
            media = (ctype or "").split(";")[0].strip().lower()
            if method in ("POST", "PUT", "DELETE") and media == k8s_proto.MEDIA_TYPE and raw:
                # DELETE too: a typed client's DeleteOptions (`kubectl drain --disable-eviction`)
                try:
                    body = k8s_proto.decode(raw)
                except (k8s_proto.ProtoError, UnicodeDecodeError, ValueError) as exc:
                    raise bad_request(f"the object provided is unrecognized: {exc}") from exc
            elif method in ("POST", "PUT") and media not in BODY_TYPES:
                raise unsupported_media(ctype or "", accepted=("application/json", k8s_proto.MEDIA_TYPE))
            if method == "PATCH" and media not in PATCH_TYPES:
                raise unsupported_media(ctype or "")
            if raw and body is None:
                try:
                    body = json.loads(raw)
                except ValueError as exc:
                    raise bad_request(f"the body of the request could not be decoded as JSON: {exc}") from exc
            fault = self.api.faults.pick(method, path, query_s)
            if fault is not None:
                if fault.delay_s:
                    time.sleep(fault.delay_s)
                if fault.drop:
                    status = 0
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault.status is not None:
                    status = fault.status
                    payload = (
                        fault.body
                        or ApiError(fault.status, "InjectedFault", f"injected fault {fault.status}").status()
                    )
                    self._send(fault.status, payload, fault.headers)
                    return
            if self.api.token_validator is not None:
                auth = self.headers.get("Authorization", "")
                token = auth[7:] if auth.startswith("Bearer ") else None
                if not self.api.token_validator(token):
                    raise ApiError(401, "Unauthorized", "Unauthorized")
            status = self._dispatch(method, path, query, ctype, body)
        except ApiError as exc:
            status = exc.code
            self._send(exc.code, exc.status(), exc.headers)
        except (BrokenPipeError, ConnectionResetError):
            status = 499
        except Exception as exc:  # surface bugs as 500s, as the real server would
            log.exception("sandbox API error on %s %s", method, path)
            status = 500
            self._send(500, ApiError(500, "InternalError", f"Internal error occurred: {exc}").status())
        finally:
            self._log(status)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _log(self, code: int) -> None:
        entry, self._log_entry = self._log_entry, None
        if entry is not None:
            entry(code)

    def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data, media = None, "application/json"
        if self._protobuf and isinstance(payload, dict):
            data, media = k8s_proto.encode(payload), k8s_proto.MEDIA_TYPE
        if data is None:  # JSON asked for, or a kind without a protobuf form (discovery, Table)
            data, media = json.dumps(payload, separators=(",", ":")).encode(), "application/json"
        self._response_type = media
        self._log(code)
        self.send_response(code)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _wants_table(self) -> bool:
        return "as=Table" in (self.headers.get("Accept") or "")

    # --- dispatch ------------------------------------------------------------------------------
    def _dispatch(
        self, method: str, path: str, query: dict[str, list[str]], ctype: str | None, body: Any
    ) -> int:
        routed = _route(path)
        if not isinstance(routed, _Route):
            if method != "GET":
                raise method_not_allowed()
            self._send(200, routed)
            return 200
        if method == "GET":
            return self._get(routed, query)
        if method == "POST":
            return self._post(routed, query, body)
        if routed.name is None:
            raise method_not_allowed()
        self._require_scope(routed.resource, routed.namespace)
        if method in ("PUT", "PATCH"):
            return self._update(method, routed, query, ctype, body)
        if method == "DELETE":
            return self._delete(routed, query, body)
        raise method_not_allowed()

    def _get(self, r: _Route, query: dict[str, list[str]]) -> int:
        reg, res = self.api.registry, r.resource
        include = _one(query, "includeObject") or "Metadata"
        if r.name is None:
            if _flag(query, "watch"):
                self._watch(res, r.namespace, query, include if self._wants_table() else None)
                return 200
            items, rv = reg.store.list(
                res.plural, r.namespace, _one(query, "labelSelector"), _one(query, "fieldSelector")
            )
            if self._wants_table():
                self._send(200, to_table(res, items, str(rv), include))
            else:
                self._send(
                    200,
                    {
                        "kind": res.list_kind,
                        "apiVersion": res.api_version,
                        "metadata": {"resourceVersion": str(rv)},
                        "items": items,
                    },
                )
            return 200
        self._require_scope(res, r.namespace)
        if r.sub == "scale":
            obj = reg.get_scale(res.plural, r.namespace, r.name)
        elif r.sub in (None, "status"):
            obj = reg.get(res.plural, r.namespace, r.name)
        else:
            raise method_not_allowed()
        if self._wants_table() and r.sub is None:
            self._send(200, to_table(res, [obj], obj["metadata"].get("resourceVersion"), include))
        else:
            self._send(200, obj)
        return 200

    def _post(self, r: _Route, query: dict[str, list[str]], body: Any) -> int:
        reg = self.api.registry
        dry_run = "All" in (query.get("dryRun") or [])
        if not isinstance(body, dict):
            raise bad_request("a JSON object body is required")
        sub = self.api.subresources.get(f"{r.resource.plural}/{r.sub}") if r.sub else None
        if sub is not None and r.name is not None:
            self._require_scope(r.resource, r.namespace)
            self._send(201, sub.create(r.namespace or "default", r.name, body, dry_run=dry_run))
            return 201
        if r.name is not None or r.sub is not None:
            raise method_not_allowed()
        self._send(201, reg.create(r.resource.plural, r.namespace, body, dry_run=dry_run))
        return 201

    def _update(
        self, method: str, r: _Route, query: dict[str, list[str]], ctype: str | None, body: Any
    ) -> int:
        reg = self.api.registry
        dry_run = "All" in (query.get("dryRun") or [])
        assert r.name is not None
        if method == "PUT":
            if not isinstance(body, dict):
                raise bad_request("a JSON object body is required")
            obj = reg.update(r.resource.plural, r.namespace, r.name, body, subresource=r.sub, dry_run=dry_run)
        else:
            obj = reg.patch(
                r.resource.plural, r.namespace, r.name, ctype or "", body, subresource=r.sub, dry_run=dry_run
            )
        self._send(200, obj)
        return 200

    def _delete(self, r: _Route, query: dict[str, list[str]], body: Any) -> int:
        if r.sub is not None:
            raise method_not_allowed()
        assert r.name is not None
        res = r.resource
        options: Obj = dict(body) if isinstance(body, dict) else {}
        if "gracePeriodSeconds" in query:
            options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"][0])
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"][0]
        obj = self.api.registry.delete(
            res.plural, r.namespace, r.name, options, dry_run="All" in (query.get("dryRun") or [])
        )
        if res.plural == "pods":
            # Pods return the object (still there while terminating); most kinds return a Status.
            self._send(200, obj)
        else:
            md = obj["metadata"]
            self._send(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": md["name"],
                        "group": res.group,
                        "kind": res.plural,
                        "uid": md.get("uid"),
                    },
                },
            )
        return 200

    @staticmethod
    def _require_scope(res: Resource, ns: str | None) -> None:
        if res.namespaced and ns is None:
            raise not_found(res.qualified, "")

    def _watch(
        self, res: Resource, ns: str | None, query: dict[str, list[str]], table: str | None = None
    ) -> None:
        """Stream events; with `table` (the includeObject of an `as=Table` request, as `kubectl get
        -w` sends) each event's object is a one-row Table, as the apiserver's watch transforms it
        (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/watch.go)."""
        rv_s = _one(query, "resourceVersion")
        since = int(rv_s) if rv_s and rv_s.isdigit() else None
        timeout = float(_one(query, "timeoutSeconds") or self.api.watch_max_s)
        timeout = min(timeout, self.api.watch_max_s)
        bookmarks = _flag(query, "allowWatchBookmarks")
        store = self.api.registry.store
        self._response_type = k8s_proto.WATCH_MEDIA_TYPE if self._protobuf else "application/json"
        self._log(200)
        self.send_response(200)
        self.send_header("Content-Type", self._response_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        try:
            watcher = store.watch(
                res.plural, ns, _one(query, "labelSelector"), _one(query, "fieldSelector"), since
            )
        except ApiError as exc:
            self._chunk({"type": "ERROR", "object": exc.status()})
            self._chunk_end()
            return
        deadline = time.monotonic() + timeout
        try:
            while not self.api._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    ev = watcher.queue.get(timeout=min(left, 1.0))
                except queue.Empty:
                    if bookmarks:
                        self._chunk(
                            {
                                "type": "BOOKMARK",
                                "object": {
                                    "kind": res.kind,
                                    "apiVersion": res.api_version,
                                    "metadata": {"resourceVersion": str(store.resource_version)},
                                },
                            }
                        )
                    continue
                if ev is None:
                    break
                obj = ev.obj
                if table is not None:
                    obj = to_table(res, [obj], obj["metadata"].get("resourceVersion"), table)
                self._chunk({"type": ev.type, "object": obj})
            self._chunk_end()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            watcher.close()
            self.close_connection = True

    def _chunk(self, payload: Obj) -> None:
        body = k8s_proto.encode(payload["object"]) if self._protobuf else None
        if body is not None:
            data = k8s_proto.watch_frame(payload["type"], body)
        else:
            data = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _chunk_end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
