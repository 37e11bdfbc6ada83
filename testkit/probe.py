"""A reader that watches the API from a process of its own: what a load balancer and a user
reading an order see while the writers hammer it.

    python -m testkit.probe --url URL --path /health --path /orders/ID \
        --interval 0.2 --seconds 120 --out samples.json

Every `interval` seconds it GETs each path in turn (timeout `timeout`) and records
(time.monotonic() at the start, path, status or 0 for no answer, seconds), until `seconds`
have passed or SIGTERM; then writes them as JSON. A process of its own, so that the writers'
threads (the test's GIL) do not add to the latencies it measures; time.monotonic() is the
system's monotonic clock on Linux, the same in the test.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
import urllib.error
import urllib.request


def get(url: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


class StopRequest:
    """SIGTERM's mark. A plain flag: a signal handler that sets a threading.Event can
    deadlock on the Event's lock when the signal comes while the main thread holds it
    (inside `Event.wait`); a probe hung so after its SIGTERM in a test run."""

    requested = False

    @classmethod
    def on_signal(cls, signum, frame) -> None:
        cls.requested = True


def watch(url: str, paths: list[str], interval: float, seconds: float, timeout: float):
    samples = []
    ends = time.monotonic() + seconds
    while time.monotonic() < ends and not StopRequest.requested:
        turn = time.monotonic()
        for path in paths:
            began = time.monotonic()
            status = get(url + path, timeout)
            samples.append((began, path, status, time.monotonic() - began))
        time.sleep(max(interval - (time.monotonic() - turn), 0))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", action="append", required=True)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, StopRequest.on_signal)
    samples = watch(options.url, options.path, options.interval, options.seconds, options.timeout)
    with open(options.out, "w") as out:
        json.dump(samples, out)


if __name__ == "__main__":
    main()
