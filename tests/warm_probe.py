"""`python -m tests.warm_probe OUT MODE`: what a task process sees, written to OUT as JSON.

MODE: `ok`, `exit3` (sys.exit(3)), `raise` (an uncaught error) or `sleep` (wait to be killed).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def parent_command() -> str:
    return Path(f"/proc/{os.getppid()}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def main() -> int:
    out, mode = Path(sys.argv[1]), sys.argv[2]
    print("probe stdout", flush=True)
    print("probe stderr", file=sys.stderr, flush=True)
    seen = {
        "name": __name__,
        "argv": sys.argv,
        "cwd": str(Path.cwd()),
        "path0": sys.path[0],
        "env": os.environ.get("TTG_PROBE"),
        "stdin": sys.stdin.read(),
        "own_session": os.getsid(0) == os.getpid() == os.getpgid(0),
        "pid": os.getpid(),
        "warm": "workflows.warm" in parent_command(),
    }
    out.write_text(json.dumps(seen))
    if mode == "exit3":
        return 3
    if mode == "raise":
        raise ValueError("probe raised")
    if mode == "sleep":
        time.sleep(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
