"""Each attempt's pod as its container sees it: fresh emptyDir folders inside the run's
private folder, and its command, working folder, environment and output files with every
variable resolved (the `Launch` the launcher starts).

Kubernetes' emptyDir: https://kubernetes.io/docs/concepts/storage/volumes/#emptydir
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from workflows.local_files import remove_tree, run_folder
from workflows.local_launch import PYTHON_COMMANDS
from workflows.local_model import Launch, TaskError
from workflows.local_values import resolve
from workflows.manifest import (
    Container,
    Template,
    secret_variable,
    substitute,
)

__all__ = ["Pods"]


class Pods:
    """The pods of one run; `close` removes every folder they left and the run's lock."""

    def __init__(self, name: str, globals_: dict[str, str]) -> None:
        self.name = name
        self.globals = globals_
        self.volumes: Path | None = None  # the run's private folder of emptyDir folders
        self.volumes_lock: int | None = None  # held while the run lives (`run_folder`)

    def prepare(self, template: Template, scope: dict[str, str]) -> tuple[Path | None, Launch]:
        """One attempt's emptyDir folders (None: it mounts none) and what it runs."""
        container = template.container
        assert container is not None
        pod, paths = self._pod(container)
        try:
            return pod, self._launch(template, scope, pod, paths)
        except TaskError:
            remove_tree(pod)
            raise

    def _pod(self, container: Container) -> tuple[Path | None, dict[str, str]]:
        """A fresh folder for each emptyDir volume the container mounts, as a new pod gets:
        made by mkdtemp (mode 0700, a name nobody can guess) inside the run's own folder, so
        no other user can plant a file or a symlink where a task writes."""
        if not container.mounts:
            return None, {}
        try:
            if self.volumes is None:
                self.volumes, self.volumes_lock = run_folder(self.name)
            pod = Path(tempfile.mkdtemp(prefix="pod-", dir=self.volumes))
            folders = {
                name: f"volume-{i}"
                for i, name in enumerate(dict.fromkeys(mount.volume for mount in container.mounts))
            }
            paths: dict[str, str] = {}
            for mount in container.mounts:
                folder = pod / folders[mount.volume] / mount.sub_path
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                paths[mount.path] = str(folder)
        except OSError as exc:
            raise TaskError(f"cannot make the emptyDir folders: {exc}") from None
        return pod, paths

    def _launch(
        self, template: Template, scope: dict[str, str], pod: Path | None, paths: dict[str, str]
    ) -> Launch:
        container = template.container
        assert container is not None
        argv = [
            resolve(arg, scope, "command", paths) for arg in (*container.command, *container.args)
        ]
        if argv[0] in PYTHON_COMMANDS:
            argv[0] = sys.executable
        cwd = Path.cwd()
        if container.working_dir is not None:
            cwd = cwd / resolve(container.working_dir, scope, "workingDir", paths)
            if pod is not None and cwd.is_relative_to(pod):  # the runtime makes it, in a pod
                try:
                    cwd.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError as exc:
                    raise TaskError(f"workingDir: cannot make {cwd}: {exc.strerror}") from None
        outputs = tuple(
            (
                o.name,
                cwd / resolve(o.path, scope, o.name, paths),
                None if o.default is None else resolve(o.default, scope, o.name),
            )
            for o in template.outputs
        )
        return Launch(tuple(argv), self._environment(container, scope, paths), cwd, outputs)

    def _environment(
        self, container: Container, scope: dict[str, str], paths: dict[str, str]
    ) -> dict[str, str]:
        env = dict(os.environ)
        for var in container.env:
            if var.secret is None:
                env[var.name] = resolve(var.value, scope, var.name, paths)
                continue
            variable = secret_variable(substitute(var.secret.key, self.globals))
            if variable in os.environ:
                env[var.name] = os.environ[variable]
            elif not var.secret.optional:
                raise TaskError(f"env {var.name}: environment variable {variable} is unset")
        return env

    def close(self) -> None:
        remove_tree(self.volumes)
        if self.volumes_lock is not None:
            os.close(self.volumes_lock)
