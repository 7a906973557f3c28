"""The Argo Server client: submit a Workflow, read and wait for its status, schedule a CronWorkflow.

Configured the way the `argo` CLI is (`ARGO_SERVER`, `ARGO_SECURE`, `ARGO_TOKEN`,
`ARGO_NAMESPACE`, `ARGO_INSECURE_SKIP_VERIFY`, `ARGO_BASE_HREF`) and spoken to through Hera's
`WorkflowsService`, so request bodies are Hera's own models of Argo's API. Every failure,
whether an HTTP status, a refused connection or a TLS mismatch, becomes an `ArgoError` whose
message is one line a user can act on. Nothing here prints: the CLI does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import ssl
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import pydantic
import requests
from hera.exceptions import HeraException
from hera.workflows import CronWorkflow, Workflow
from hera.workflows import models as m
from hera.workflows.service import WorkflowsService

T = TypeVar("T")

DEFAULT_NAMESPACE = "argo"
DEFAULT_TIMEOUT_SECONDS = 30.0
COMPUTE_TEMPLATE = "compute"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Error"})
# A long --wait should survive a blip (an Argo Server restart, a load balancer's 502), not
# die on the first failed poll; this many failures in a row end it.
WAIT_TOLERATED_FAILURES = 3
_TRUE = frozenset({"1", "t", "true", "y", "yes", "on"})
_FALSE = frozenset({"0", "f", "false", "n", "no", "off"})
_NAMESPACE_RE = re.compile(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
# Argo names a loop child `<task>(<index>:<item>)`, a retry attempt adds `(<attempt>)`.
_ITEM_RE = re.compile(r"\((\d+):([^)]*)\)")


class ArgoError(Exception):
    """Talking to the Argo Server failed; the message is one line naming what to check.

    `status` is the HTTP status (None when no answer came back); `transient` says whether
    trying again later could succeed (no answer, timeout, 5xx).
    """

    def __init__(self, message: str, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


# --- configuration -------------------------------------------------------------------------


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ArgoError(f"{name} must be true or false, got '{environ[name]}'")


def _authorization(token: str) -> str | None:
    """The Authorization header for ARGO_TOKEN: `Bearer ` is added unless a scheme is there."""
    token = token.strip()
    if not token:
        return None
    return token if len(token.split()) > 1 else f"Bearer {token}"


def _base_url(server: str, secure: bool, base_href: str) -> str:
    """`scheme://host:port/<base href>/`; the trailing slash keeps the base in `urljoin`."""
    if "://" in server:
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ArgoError(f"ARGO_SERVER must be host:port or an http(s):// URL, got '{server}'")
        path = parts.path.strip("/") or base_href.strip("/")
        scheme, netloc = parts.scheme, parts.netloc
    else:
        parts = urlsplit(f"//{server}")
        if not parts.hostname or parts.path or parts.query:
            raise ArgoError(f"ARGO_SERVER must be host:port or an http(s):// URL, got '{server}'")
        path = base_href.strip("/")
        scheme, netloc = ("https" if secure else "http"), parts.netloc
    try:
        parts.port  # noqa: B018  (validates the port)
    except ValueError:
        raise ArgoError(f"ARGO_SERVER has a bad port: '{server}'") from None
    return f"{scheme}://{netloc}/" + (f"{path}/" if path else "")


@dataclass(frozen=True)
class ArgoConfig:
    """Where the Argo Server is and how to talk to it."""

    url: str  # base URL ending in '/', e.g. https://localhost:2746/ (or .../<base href>/)
    namespace: str = DEFAULT_NAMESPACE
    authorization: str | None = field(default=None, repr=False)  # the header value
    verify_ssl: bool = True
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_env(
        cls, namespace: str | None = None, environ: Mapping[str, str] | None = None
    ) -> ArgoConfig:
        """Read the `argo` CLI's variables; an explicit `namespace` wins over ARGO_NAMESPACE."""
        env = os.environ if environ is None else environ
        server = env.get("ARGO_SERVER", "").strip()
        if not server:
            raise ArgoError(
                "ARGO_SERVER is not set: point it at the Argo Server, e.g. "
                "ARGO_SERVER=localhost:2746 (add ARGO_SECURE=false for plain HTTP)"
            )
        secure = _flag(env, "ARGO_SECURE", default=True)
        skip_verify = _flag(env, "ARGO_INSECURE_SKIP_VERIFY", default=False)
        chosen = namespace or env.get("ARGO_NAMESPACE", "").strip() or DEFAULT_NAMESPACE
        if not _NAMESPACE_RE.match(chosen):
            raise ArgoError(f"namespace '{chosen}' is not a valid Kubernetes namespace name")
        return cls(
            url=_base_url(server, secure, env.get("ARGO_BASE_HREF", "")),
            namespace=chosen,
            authorization=_authorization(env.get("ARGO_TOKEN", "")),
            verify_ssl=not skip_verify,
        )

    @property
    def server(self) -> str:
        """host:port, for messages."""
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.hostname}:{port}"


def ui_url(
    config: ArgoConfig, name: str, kind: Literal["workflows", "cron-workflows"] = "workflows"
) -> str:
    """Where the Argo UI shows the object (the UI is served from the same base as the API)."""
    return f"{config.url}{kind}/{config.namespace}/{name}"


# --- transport and error mapping -------------------------------------------------------------


class _Session(requests.Session):
    """A session with a timeout on every request (Hera sets none, so a silent server would
    hang the CLI) that keeps the last response, whose body carries Argo's error message."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self.last_response: requests.Response | None = None

    def request(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        self.last_response = None
        with warnings.catch_warnings():
            # verify_ssl=False is the user's explicit choice; don't nag on every poll.
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
            response = super().request(method, url, *args, **kwargs)
        self.last_response = response
        return response


def _innermost(exc: BaseException) -> BaseException:
    """The root cause inside requests' and urllib3's wrappers (MaxRetryError.reason, ...)."""
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        nested = [getattr(current, "reason", None), current.__cause__, current.__context__]
        nested += [arg for arg in current.args if isinstance(arg, BaseException)]
        following = next((n for n in nested if isinstance(n, BaseException)), None)
        if following is None:
            break
        current = following
    return current


def _reason(exc: BaseException) -> str:
    root = _innermost(exc)
    if isinstance(root, ssl.SSLCertVerificationError):
        return root.verify_message or "certificate verify failed"
    if isinstance(root, ssl.SSLError):
        return str(root.reason or root.strerror or root)
    if isinstance(root, OSError) and root.strerror:
        return root.strerror.rstrip(".").lower()
    text = str(root).strip()
    return text.splitlines()[0] if text else type(root).__name__


def _server_message(response: requests.Response | None) -> str:
    """Argo's grpc-gateway error body is `{"code": N, "message": "..."}`; else the text."""
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = body["message"]
    else:
        text = response.text or response.reason or ""
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _http_error(
    config: ArgoConfig, status: int, message: str, action: str, target: str | None
) -> ArgoError:
    """One line per status; `action` is what was attempted ("create workflows"), `target` the
    object it names (None when the namespace itself is the target, as for a create)."""
    ns = config.namespace
    said = f" ({message})" if message else ""
    if status == 401:
        if config.authorization:
            hint = f"check ARGO_TOKEN; the Argo Server at {config.server} refused it"
        else:
            hint = f"ARGO_TOKEN is not set and the Argo Server at {config.server} needs one"
        return ArgoError(f"unauthorized: {hint}{said}", status)
    if status == 403:
        return ArgoError(
            f"forbidden: the token's service account lacks permission to {action} "
            f"in namespace '{ns}'{said}",
            status,
        )
    if status == 404:
        if target is None or message.startswith("namespaces "):
            return ArgoError(
                f"not found: namespace '{ns}' does not exist on the Argo Server at "
                f"{config.server} (or the server does not manage it){said}",
                status,
            )
        return ArgoError(f"not found: {target} in namespace '{ns}'{said}", status)
    if status == 409:
        return ArgoError(
            f"already exists: {target or 'the object'} in namespace '{ns}'{said}", status
        )
    return ArgoError(
        f"Argo Server at {config.server} answered HTTP {status} to: {action}{said}",
        status,
        transient=status >= 500,
    )


@contextlib.contextmanager
def _service(config: ArgoConfig) -> Iterator[_Client]:
    session = _Session(config.timeout)
    service = WorkflowsService(
        host=config.url,
        verify_ssl=config.verify_ssl,
        token=config.authorization,
        namespace=config.namespace,
        session=session,
    )
    with service:
        yield _Client(config, service, session)


@dataclass
class _Client:
    config: ArgoConfig
    service: WorkflowsService
    session: _Session

    def call(
        self, fn: Callable[[WorkflowsService], T], action: str, target: str | None = None
    ) -> T:
        """Run one Hera service call, turning whatever goes wrong into one ArgoError."""
        config = self.config
        try:
            with warnings.catch_warnings():
                # Hera serialises with pydantic's v1-style `.json()`; not ours to fix.
                warnings.filterwarnings("ignore", message="The `json` method is deprecated")
                return fn(self.service)
        except (HeraException, KeyError):
            response = self.session.last_response
            if response is None or response.ok:
                raise  # a KeyError of our own making, not Hera reading an error body
            raise _http_error(
                config, response.status_code, _server_message(response), action, target
            ) from None
        except requests.exceptions.SSLError as exc:
            raise ArgoError(
                f"TLS with the Argo Server at {config.server} failed: {_reason(exc)} "
                "(plain HTTP server? set ARGO_SECURE=false; self-signed certificate? "
                "set ARGO_INSECURE_SKIP_VERIFY=true)"
            ) from None
        except requests.exceptions.Timeout:
            raise ArgoError(
                f"the Argo Server at {config.server} did not answer within "
                f"{config.timeout:g}s (to: {action})",
                transient=True,
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise ArgoError(
                f"cannot reach the Argo Server at {config.server}: {_reason(exc)} "
                "(check ARGO_SERVER and ARGO_SECURE)",
                transient=True,
            ) from None
        except requests.exceptions.JSONDecodeError:
            raise ArgoError(
                f"unexpected answer from {config.url} to: {action}: not JSON (is ARGO_SERVER "
                "the Argo Server, and ARGO_BASE_HREF its base path?)"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise ArgoError(f"cannot {action} at {config.server}: {_reason(exc)}") from None
        except pydantic.ValidationError:
            raise ArgoError(
                f"unexpected answer from {config.url} to: {action} (is ARGO_SERVER the Argo "
                "Server, and ARGO_BASE_HREF its base path?)"
            ) from None


# --- workflows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardCounts:
    """Compute shards by state; `pending` is what has not started (or not been seen) yet."""

    total: int
    succeeded: int = 0
    running: int = 0
    failed: int = 0
    retries: int = 0  # extra attempts beyond each shard's first

    @property
    def pending(self) -> int:
        return max(0, self.total - self.succeeded - self.running - self.failed)


@dataclass(frozen=True)
class WorkflowStatus:
    """What `status` shows and `--wait` follows: the run's phase and its shards."""

    name: str
    namespace: str
    phase: str  # Pending, Running, Succeeded, Failed, Error ("Pending" until Argo sets one)
    message: str | None
    started_at: datetime | None
    finished_at: datetime | None
    shards: ShardCounts
    shard_phases: Mapping[int, str]  # phase of each shard seen so far, by shard index
    shard_nodes: Mapping[int, str]  # Argo node name of each shard, for messages

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def succeeded(self) -> bool:
        return self.phase == "Succeeded"


def _time(value: m.Time | None) -> datetime | None:
    return None if value is None else value.root


def _shard_index(node: m.NodeStatus) -> int | None:
    """The shard a compute node works on: its `shard` input, else the loop item in its name."""
    for parameter in (node.inputs.parameters or []) if node.inputs else []:
        if parameter.name == "shard" and parameter.value is not None:
            with contextlib.suppress(ValueError):
                return int(str(parameter.value))
    match = _ITEM_RE.search(node.name or node.display_name or "")
    if match:
        with contextlib.suppress(ValueError):
            return int(match.group(2))
    return None


def _shard_count(workflow: m.Workflow) -> int | None:
    """From the `spec` parameter TTG passes, else from the compute task's withSequence count."""
    spec = workflow.spec
    status = workflow.status
    for parameter in (spec.arguments.parameters or []) if spec and spec.arguments else []:
        if parameter.name == "spec" and parameter.value is not None:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                return int(json.loads(str(parameter.value))["shards"])
    specs = [spec, status.stored_workflow_template_spec if status else None]
    for templates in (s.templates or [] for s in specs if s is not None):
        for template in templates:
            for task in template.dag.tasks if template.dag else []:
                if task.template == COMPUTE_TEMPLATE and task.with_sequence:
                    count = task.with_sequence.count
                    with contextlib.suppress(ValueError, TypeError):
                        return int(str(count.root if count is not None else ""))
    return None


def _shards(workflow: m.Workflow) -> tuple[ShardCounts, dict[int, str], dict[int, str]]:
    """Shard states from the compute nodes in `status.nodes`.

    With a retryStrategy Argo makes one `Retry` node per shard (its phase is the shard's
    outcome) with a `Pod` child per attempt; without one, the `Pod` is the shard. A failed
    attempt that will be retried therefore does not count as a failed shard.
    """
    nodes = (workflow.status.nodes if workflow.status else None) or {}
    retry_phase: dict[int, str] = {}
    pods: dict[int, list[m.NodeStatus]] = {}
    names: dict[int, str] = {}
    for node in nodes.values():
        if node.template_name != COMPUTE_TEMPLATE or node.type not in ("Retry", "Pod"):
            continue
        index = _shard_index(node)
        if index is None:
            continue
        if node.type == "Retry":
            retry_phase[index] = node.phase or "Pending"
            names[index] = node.name
        else:
            pods.setdefault(index, []).append(node)
            names.setdefault(index, node.name)
    phases: dict[int, str] = {}
    for index in retry_phase.keys() | pods.keys():
        if index in retry_phase:
            phases[index] = retry_phase[index]
        else:
            latest = max(pods[index], key=lambda n: (_time(n.started_at) is not None, n.name))
            phases[index] = latest.phase or "Pending"
    values = list(phases.values())
    counts = ShardCounts(
        total=max(_shard_count(workflow) or 0, len(phases)),
        succeeded=values.count("Succeeded"),
        running=values.count("Running"),
        failed=sum(p in ("Failed", "Error") for p in values),
        retries=sum(max(0, len(attempts) - 1) for attempts in pods.values()),
    )
    return counts, phases, names


def workflow_status(workflow: m.Workflow, namespace: str) -> WorkflowStatus:
    """Summarise a Workflow object as the Argo Server returns it."""
    status = workflow.status
    counts, phases, names = _shards(workflow)
    return WorkflowStatus(
        name=workflow.metadata.name or "",
        namespace=workflow.metadata.namespace or namespace,
        phase=(status.phase if status else None) or "Pending",
        message=status.message if status else None,
        started_at=_time(status.started_at) if status else None,
        finished_at=_time(status.finished_at) if status else None,
        shards=counts,
        shard_phases=phases,
        shard_nodes=names,
    )


def _describe(kind: str, metadata: m.ObjectMeta) -> str:
    if metadata.name:
        return f"{kind} '{metadata.name}'"
    return f"{kind} '{metadata.generate_name or ''}...'"


def submit_workflow(config: ArgoConfig, workflow: Workflow) -> str:
    """Create the Workflow (POST /api/v1/workflows/{ns}); returns the name Argo gave it."""
    model = workflow.build()
    if not isinstance(model, m.Workflow):
        raise TypeError(f"expected a Workflow, got {type(model).__name__}")
    declared = model.metadata.namespace
    if declared and declared != config.namespace:
        raise ArgoError(
            f"the workflow declares namespace '{declared}' but is submitted to '{config.namespace}'"
        )
    request = m.WorkflowCreateRequest(namespace=config.namespace, workflow=model)
    with _service(config) as client:
        created = client.call(
            lambda s: s.create_workflow(request, namespace=config.namespace),
            "create workflows",
            _describe("workflow", model.metadata),
        )
    if not created.metadata.name:
        raise ArgoError(f"the Argo Server at {config.server} created a workflow without a name")
    return created.metadata.name


def get_workflow(config: ArgoConfig, name: str) -> WorkflowStatus:
    """Read one workflow (GET /api/v1/workflows/{ns}/{name}) and summarise its shards."""
    with _service(config) as client:
        workflow = client.call(
            lambda s: s.get_workflow(name, namespace=config.namespace),
            "get workflows",
            f"workflow '{name}'",
        )
    return workflow_status(workflow, config.namespace)


def wait_for(
    config: ArgoConfig,
    name: str,
    poll_seconds: float = 5.0,
    on_update: Callable[[WorkflowStatus], None] | None = None,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> WorkflowStatus:
    """Poll until the workflow Succeeded, Failed or Errored; `on_update` sees every poll.

    A few transient failures in a row (unreachable, timeout, 5xx) are ridden out: a run can
    outlive an Argo Server restart. `timeout` bounds the whole wait.
    """
    began = time.monotonic()
    failures = 0
    while True:
        try:
            status = get_workflow(config, name)
        except ArgoError as exc:
            failures += 1
            if not exc.transient or failures >= WAIT_TOLERATED_FAILURES:
                raise
        else:
            failures = 0
            if on_update is not None:
                on_update(status)
            if status.done:
                return status
        if timeout is not None and time.monotonic() - began >= timeout:
            raise ArgoError(f"gave up waiting for workflow '{name}' after {timeout:g}s")
        sleep(poll_seconds)


# --- cron workflows --------------------------------------------------------------------------


def schedule_cron(config: ArgoConfig, cron: CronWorkflow) -> Literal["created", "updated"]:
    """Create the CronWorkflow, or update it in place when one of that name exists.

    Argo answers a create of an existing name with 409; the update must then carry the
    current `resourceVersion` (optimistic concurrency), so it is read first.
    """
    model = cron.build()
    if not isinstance(model, m.CronWorkflow):
        raise TypeError(f"expected a CronWorkflow, got {type(model).__name__}")
    name = model.metadata.name
    if not name:
        raise ArgoError("a CronWorkflow needs a fixed name to be created or updated")
    declared = model.metadata.namespace
    if declared and declared != config.namespace:
        raise ArgoError(
            f"the cron workflow declares namespace '{declared}' but is submitted to "
            f"'{config.namespace}'"
        )
    ns = config.namespace
    with _service(config) as client:
        try:
            create = m.CreateCronWorkflowRequest(namespace=ns, cron_workflow=model)
            client.call(
                lambda s: s.create_cron_workflow(create, namespace=ns), "create cronworkflows"
            )
            return "created"
        except ArgoError as exc:
            if exc.status != 409:
                raise
        current = client.call(
            lambda s: s.get_cron_workflow(name, namespace=ns),
            "get cronworkflows",
            f"cron workflow '{name}'",
        )
        model.metadata.resource_version = current.metadata.resource_version
        update = m.UpdateCronWorkflowRequest(name=name, namespace=ns, cron_workflow=model)
        client.call(
            lambda s: s.update_cron_workflow(name, update, namespace=ns),
            "update cronworkflows",
            f"cron workflow '{name}'",
        )
    return "updated"
