"""wrk, the load generator of the throughput levels: its Lua scripts, a run, its summary.

Each run writes a Lua script that builds every request itself (a fresh user id and
payload id per POST through `wrk.format` and math.random; a random known order id per
GET) and prints one `WRK_JSON {...}` line from `done()`, which `wrk_summary_parse` reads.
The run's CPU time comes from the kernel's accounting of that one child (`os.wait4`):
wrk shares the machine with what it measures, and its share says how much it took.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SUMMARY_PREFIX = "WRK_JSON "
INSTALL_HINT = "wrk is not installed: apt-get install -y wrk"

# Shared by both scripts: seeding per wrk thread (`setup` numbers them), and the summary.
_COMMON = r"""
local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
end
function init(args)
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919 + SEED)
end
local function hex(n)
  local out = {}
  for i = 1, n do out[i] = string.format("%x", math.random(0, 15)) end
  return table.concat(out)
end
function uuid4()
  return hex(8) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-" ..
    string.format("%x", math.random(8, 11)) .. hex(3) .. "-" .. hex(12)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
"""

_POST = r"""
local headers = {["Content-Type"] = "application/json", ["Accept"] = "application/json"}
function request()
  local body = string.format(
    '{"user_id": "%s", "payload": {"id": "bench-%s", "items": [{"price": 9.5, "qty": 2}]}}',
    uuid4(), hex(12))
  return wrk.format("POST", PATH, headers, body)
end
"""

_GET = r"""
local headers = {["Accept"] = "application/json"}
function request()
  return wrk.format("GET", PATH_PREFIX .. IDS[math.random(#IDS)], headers)
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII is a valid Lua string literal


def post_script(path: str, seed: int = 0) -> str:
    """A script POSTing a fresh order to `path` with every request."""
    return f"PATH = {_lua_string(path)}\nSEED = {int(seed)}\n{_COMMON}{_POST}"


def get_script(path_prefix: str, ids: list[str], seed: int = 0) -> str:
    """A script GETting `path_prefix` + one of `ids`, drawn at random, with every request."""
    if not ids:
        raise ValueError("a GET script needs at least one id")
    table = ", ".join(_lua_string(str(i)) for i in ids)
    return (
        f"PATH_PREFIX = {_lua_string(path_prefix)}\nIDS = {{{table}}}\nSEED = {int(seed)}\n"
        f"{_COMMON}{_GET}"
    )


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: its summary (from `done()`), wall time and CPU time."""

    summary: dict
    wall_seconds: float
    cpu_seconds: float

    @property
    def errors(self) -> int:
        s = self.summary
        return sum(
            s[k]
            for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
        )

    @property
    def rps(self) -> float:
        """Answered requests without an error (non-2xx/3xx included in errors) per second."""
        seconds = self.summary["duration_us"] / 1e6
        return (self.summary["requests"] - self.errors) / seconds if seconds else 0.0

    @property
    def cpu_share(self) -> float:
        """wrk's CPU time over its wall time: 1.0 is one core busy the whole run."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0

    def as_dict(self, concurrency: int) -> dict:
        s = self.summary
        return {
            "concurrency": concurrency,
            "requests": s["requests"],
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "latency_ms": {
                "p50": round(s["p50_us"] / 1000, 2),
                "p90": round(s["p90_us"] / 1000, 2),
                "p99": round(s["p99_us"] / 1000, 2),
                "max": round(s["max_us"] / 1000, 2),
                "mean": round(s["mean_us"] / 1000, 2),
            },
            "wrk_cpu_share": round(self.cpu_share, 3),
        }


def wrk_summary_parse(output: str) -> dict:
    """The `WRK_JSON` line of a run's output, as a dict; ValueError when there is none."""
    for line in output.splitlines():
        if line.startswith(SUMMARY_PREFIX):
            return json.loads(line[len(SUMMARY_PREFIX) :])
    raise ValueError(f"no {SUMMARY_PREFIX.strip()} line in wrk's output:\n{output[-2000:]}")


def wrk_path() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit(INSTALL_HINT)
    return found


def wrk_threads(concurrency: int, cores: int | None = None) -> int:
    """wrk's threads: one per core at most, never more than connections."""
    return max(1, min(concurrency, cores or os.cpu_count() or 1))


def wrk_run(*, url: str, script: str, concurrency: int, seconds: float) -> WrkResult:
    """Run wrk for `seconds` with `concurrency` keep-alive connections; wait for it alone
    (`os.wait4`) so its CPU time is its own."""
    with tempfile.TemporaryDirectory(prefix="orderstream-wrk-") as scratch:
        script_path = Path(scratch) / "bench.lua"
        script_path.write_text(script)
        output_path = Path(scratch) / "out.txt"
        command = [
            wrk_path(),
            f"-t{wrk_threads(concurrency)}",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(script_path),
            url,
        ]
        with output_path.open("wb") as out:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
        output = output_path.read_text(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n{output[-2000:]}")
    return WrkResult(wrk_summary_parse(output), wall, usage.ru_utime + usage.ru_stime)
