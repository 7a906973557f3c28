"""A recording stand-in for the Argo Server's REST API, on 127.0.0.1 over plain HTTP.

It speaks the few routes TTG uses, the way Argo v4 answers them (grpc-gateway JSON errors
`{"code": N, "message": "..."}`), and records every request: method, path, headers and JSON
body. Tests script it: which namespaces exist, the token it accepts, namespaces where the
token is forbidden, the name a created workflow gets, the status each GET of a workflow
returns in turn, and one-off replies that pre-empt a route.

    POST /api/v1/workflows/{ns}                create a Workflow (generateName honoured)
    GET  /api/v1/workflows/{ns}/{name}         the Workflow with the next scripted status
    POST /api/v1/cron-workflows/{ns}           create a CronWorkflow (409 if it exists)
    GET  /api/v1/cron-workflows/{ns}/{name}    the CronWorkflow
    PUT  /api/v1/cron-workflows/{ns}/{name}    update it (409 on a stale resourceVersion)
    GET  /api/v1/workflows/{ns}/{name}/log     its pods' scripted log lines, newline-delimited
                                               JSON as Argo streams them (`podName` filters)

It never runs anything. The server thread is a daemon, every connection has a socket timeout,
and a watchdog shuts the server down after `lifetime` seconds even if a test forgets to.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# gRPC codes the Argo Server puts in its JSON error bodies.
GRPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 500: 13, 503: 14}
_ROUTE = re.compile(r"^/api/v1/(workflows|cron-workflows)/([^/]+)(?:/([^/]+))?$")
_LOG_ROUTE = re.compile(r"^/api/v1/workflows/([^/]+)/([^/]+)/log$")
_KIND = {"workflows": "workflows.argoproj.io", "cron-workflows": "cronworkflows.argoproj.io"}
_BODY_KEY = {"workflows": "workflow", "cron-workflows": "cronWorkflow"}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"code": GRPC_CODE.get(status, 2), "message": message}


def shard_nodes(workflow: str, phases: list[str], retried: dict[int, int] | None = None) -> dict:
    """`status.nodes` as Argo builds it for TTG's DAG: per shard a Retry node (the shard's
    outcome) over one Pod per attempt; `retried[i]` failed attempts precede the last."""
    nodes: dict[str, dict[str, Any]] = {
        workflow: {
            "id": workflow,
            "name": workflow,
            "displayName": workflow,
            "type": "DAG",
            "templateName": "sweep",
            "phase": "Running",
        },
        f"{workflow}-group": {
            "id": f"{workflow}-group",
            "name": f"{workflow}.compute",
            "displayName": "compute",
            "type": "TaskGroup",
            "templateName": "compute",
            "phase": "Running",
        },
    }
    for shard, phase in enumerate(phases):
        if phase == "":
            continue  # not created yet
        retry_id = f"{workflow}-{1000 + shard}"
        name = f"{workflow}.compute({shard}:{shard})"
        inputs = {"parameters": [{"name": "shard", "value": str(shard)}]}
        failures = (retried or {}).get(shard, 0)
        attempts = [("Failed", "Error (exit code 1)")] * failures + [(phase, None)]
        children = []
        for attempt, (attempt_phase, message) in enumerate(attempts):
            pod_id = f"{retry_id}-{attempt}"
            children.append(pod_id)
            pod: dict[str, Any] = {
                "id": pod_id,
                "name": f"{name}({attempt})",
                "displayName": f"compute({shard}:{shard})({attempt})",
                "type": "Pod",
                "templateName": "compute",
                "phase": attempt_phase,
                "startedAt": f"2030-01-01T00:00:{attempt:02d}Z",
                "inputs": inputs,
            }
            if message:
                pod["message"] = message
            nodes[pod_id] = pod
        nodes[retry_id] = {
            "id": retry_id,
            "name": name,
            "displayName": f"compute({shard}:{shard})",
            "type": "Retry",
            "templateName": "compute",
            "phase": phase,
            "inputs": inputs,
            "children": children,
        }
    return nodes


def status(
    workflow: str,
    phase: str,
    shard_phases: list[str],
    message: str | None = None,
    retried: dict[int, int] | None = None,
) -> dict[str, Any]:
    """A Workflow `status` with TTG's shard nodes; finished phases get a finishedAt."""
    body: dict[str, Any] = {
        "phase": phase,
        "startedAt": "2030-01-01T00:00:00Z",
        "nodes": shard_nodes(workflow, shard_phases, retried),
    }
    if phase in ("Succeeded", "Failed", "Error"):
        body["finishedAt"] = "2030-01-01T00:01:30Z"
    if message:
        body["message"] = message
    return body


@dataclass
class ArgoServerStandIn:
    """The scripted state behind the HTTP handler; read `requests` to see what was sent."""

    namespaces: set[str] = field(default_factory=lambda: {"argo"})
    token: str | None = None  # when set, "Authorization: Bearer <token>" is required
    forbidden: set[str] = field(default_factory=set)  # namespaces the token may not touch
    next_names: deque[str] = field(default_factory=deque)  # names for created workflows
    statuses: deque[dict[str, Any]] = field(default_factory=deque)  # last one repeats
    replies: deque[tuple[str, str, Reply]] = field(default_factory=deque)  # method, path
    requests: list[Recorded] = field(default_factory=list)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    pod_logs: dict[str, list[str]] = field(default_factory=dict)  # pod name -> its lines
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def reply_once(self, method: str, path: str, status: int, body: Any) -> None:
        """The next `method path` gets this answer instead of the normal one; a string
        body becomes Argo's error JSON, bytes are sent as they are."""
        if isinstance(body, str):
            body = error_body(status, body)
        self.replies.append((method, path, Reply(status, body)))

    def seen(self, method: str | None = None, prefix: str = "") -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and r.path.startswith(prefix)
            ]

    # --- the API ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
        with self.lock:
            self.requests.append(Recorded(method, path, headers, body))
            for index, (m, p, reply) in enumerate(self.replies):
                if m == method and p == path:
                    del self.replies[index]
                    return reply
            return self._route(method, path, headers, body)

    def _route(self, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
        logs = _LOG_ROUTE.match(path.split("?", 1)[0])
        if logs and method == "GET":
            return self._logs(logs[1], logs[2], path, headers)
        match = _ROUTE.match(path.split("?", 1)[0])
        if not match:
            return Reply(404, error_body(404, "Not Found"))
        resource, ns, name = match.groups()
        if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, error_body(401, "token not valid. see https://argo-workflows"))
        if ns in self.forbidden:
            verb = {"GET": "get", "POST": "create", "PUT": "update"}.get(method, method.lower())
            return Reply(
                403,
                error_body(
                    403,
                    f'{_KIND[resource]} is forbidden: User "system:serviceaccount:{ns}:default" '
                    f'cannot {verb} resource "{resource.replace("-", "")}" in API group '
                    f'"argoproj.io" in the namespace "{ns}"',
                ),
            )
        if ns not in self.namespaces:
            return Reply(404, error_body(404, f'namespaces "{ns}" not found'))
        if method == "POST" and name is None:
            return self._create(resource, ns, body)
        if name is None:
            return Reply(405, error_body(400, "method not allowed"))
        stored = self.objects.get((resource, ns, name))
        if stored is None:
            return Reply(404, error_body(404, f'{_KIND[resource]} "{name}" not found'))
        if method == "GET":
            if resource == "workflows" and self.statuses:
                stored["status"] = (
                    self.statuses.popleft() if len(self.statuses) > 1 else self.statuses[0]
                )
            return Reply(200, stored)
        if method == "PUT" and resource == "cron-workflows":
            return self._update(resource, ns, name, stored, body)
        return Reply(405, error_body(400, "method not allowed"))

    def _logs(self, ns: str, name: str, path: str, headers: dict[str, str]) -> Reply:
        if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, error_body(401, "token not valid. see https://argo-workflows"))
        if ("workflows", ns, name) not in self.objects:
            return Reply(404, error_body(404, f'workflows.argoproj.io "{name}" not found'))
        query = parse_qs(urlsplit(path).query)
        wanted = query.get("podName", [None])[0]
        lines = [
            json.dumps({"result": {"content": line, "podName": pod}})
            for pod, pod_lines in sorted(self.pod_logs.items())
            if wanted in (None, pod)
            for line in pod_lines
        ]
        return Reply(200, "".join(f"{line}\n" for line in lines).encode())

    def _create(self, resource: str, ns: str, body: Any) -> Reply:
        obj = json.loads(json.dumps((body or {}).get(_BODY_KEY[resource]) or {}))
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            generated = self.next_names.popleft() if self.next_names else None
            prefix = meta.get("generateName") or ""
            meta["name"] = generated or prefix + secrets.token_hex(3)[:5]
        if (resource, ns, meta["name"]) in self.objects:
            return Reply(
                409,
                error_body(409, f'{_KIND[resource]} "{meta["name"]}" already exists'),
            )
        meta.update(namespace=ns, uid=secrets.token_hex(8), resourceVersion="1")
        meta.setdefault("creationTimestamp", "2030-01-01T00:00:00Z")
        self.objects[(resource, ns, meta["name"])] = obj
        return Reply(200, obj)

    def _update(self, resource: str, ns: str, name: str, stored: dict, body: Any) -> Reply:
        obj = json.loads(json.dumps((body or {}).get(_BODY_KEY[resource]) or {}))
        meta = obj.setdefault("metadata", {})
        current = stored["metadata"]["resourceVersion"]
        if meta.get("resourceVersion") != current:
            return Reply(
                409,
                error_body(
                    409,
                    f'Operation cannot be fulfilled on {_KIND[resource]} "{name}": the object '
                    "has been modified; please apply your changes to the latest version",
                ),
            )
        meta.update(
            namespace=ns,
            uid=stored["metadata"]["uid"],
            resourceVersion=str(int(current) + 1),
        )
        self.objects[(resource, ns, name)] = obj
        return Reply(200, obj)


def _handler_for(state: ArgoServerStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # a stalled client cannot hold a thread for longer
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = {"_unparsed": raw.decode("utf-8", "replace")}
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = state.handle(self.command, self.path, headers, body)
            raw_reply = isinstance(reply.body, bytes)  # e.g. a proxy's HTML page
            data = reply.body if raw_reply else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/html" if raw_reply else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def serve(lifetime: float = 120.0) -> Iterator[ArgoServerStandIn]:
    """Run a stand-in on a free loopback port; yields its state; always stops the thread."""
    state = ArgoServerStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    watchdog = threading.Timer(lifetime, server.shutdown)
    watchdog.daemon = True
    thread.start()
    watchdog.start()
    try:
        yield state
    finally:
        watchdog.cancel()
        if thread.is_alive():  # the watchdog may have stopped it already
            server.shutdown()
        server.server_close()
        thread.join(timeout=5)
