"""`--profile`: py-spy records a process during one measured load, beside the JSON.

py-spy attaches with ptrace (root here; elsewhere it may need CAP_SYS_PTRACE or
`kernel.yama.ptrace_scope=0`). It samples at its default rate and writes a speedscope
file (open it at speedscope.app or in Firefox's profiler); `--nonblocking` keeps the
profiled process running at full speed between samples.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def py_spy_path() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: pip install -r requirements/local.txt")
    return found


class Profile:
    """py-spy recording `pid` for `seconds` into `path` (speedscope JSON), in the background."""

    def __init__(self, *, pid: int, seconds: float, path: Path):
        self.path = path
        self.process = subprocess.Popen(
            [
                py_spy_path(),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(seconds))),
                "--format",
                "speedscope",
                "--nonblocking",
                "--output",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def wait(self, timeout: float = 60) -> str:
        """Wait for the file; return its path, or why there is none."""
        try:
            _, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return "py-spy did not finish"
        if self.process.returncode != 0 or not self.path.exists():
            return f"py-spy failed: {stderr.decode(errors='replace').strip()[-300:]}"
        return str(self.path)
