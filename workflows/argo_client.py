"""The Argo Server as the `argo` CLI finds it: configuration from the environment
(`ARGO_SERVER`, `ARGO_SECURE`, `ARGO_TOKEN`, `ARGO_NAMESPACE`, `ARGO_INSECURE_SKIP_VERIFY`,
`ARGO_BASE_HREF`), and the transport, Hera's `WorkflowsService`, whose every failure becomes
an `ArgoError` of one line a user can act on.

The `argo` CLI's environment: https://argo-workflows.readthedocs.io/en/latest/cli/argo/
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urljoin, urlsplit

import pydantic
import requests
from hera.exceptions import HeraException
from hera.workflows.service import WorkflowsService

T = TypeVar("T")

__all__ = ["DEFAULT_NAMESPACE", "ArgoConfig", "ArgoError", "service", "ui_url"]

DEFAULT_NAMESPACE = "argo"
DEFAULT_TIMEOUT_SECONDS = 30.0
_TRUE = frozenset({"1", "t", "true", "y", "yes", "on"})
_FALSE = frozenset({"0", "f", "false", "n", "no", "off"})
_NAMESPACE_RE = re.compile(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")


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
def service(config: ArgoConfig) -> Iterator[_Client]:
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

    def get_lines(self, path: str, params: dict[str, str], action: str, target: str) -> list[str]:
        """GET one of the server's streaming endpoints (newline-delimited JSON, such as the
        log API), which Hera's models cannot read, with the same error mapping as `call`."""

        def fetch(service: WorkflowsService) -> list[str]:
            headers = (
                {"Authorization": self.config.authorization} if self.config.authorization else {}
            )
            response = self.session.get(
                urljoin(service.host, path),
                params=params,
                headers=headers,
                verify=self.config.verify_ssl,
            )
            if not response.ok:
                raise _http_error(
                    self.config, response.status_code, _server_message(response), action, target
                )
            return response.text.splitlines()

        return self.call(fetch, action, target)

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
