"""An open-loop load generator: requests sent on a fixed schedule, not when the last
answered, so a slow server does not slow the offered load down.

`send_times` is the schedule; `paced_run` runs it with a pool of keep-alive clients (a
request waits for a free client when all are busy: `lateness_ms` says by how much the
schedule slipped, so a report can show whether the rate was really offered). Each
answer's `latency_ms` counts from when its request was due, not from when it left: a
server that falls behind makes the waits of the requests queued behind it count too.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable


def send_times(rate: float, seconds: float) -> list[float]:
    """Offsets in seconds from the start of every request of `rate` per second for
    `seconds`: evenly spaced, the first at 0."""
    if rate <= 0 or seconds <= 0:
        return []
    count = int(round(rate * seconds))
    return [n / rate for n in range(count)]


def lateness_summary(late_ms: list[float]) -> dict:
    """p50, p99 and max of times in ms (how late the requests left, or answered, against
    their schedule)."""
    if not late_ms:
        return {"n": 0}
    ordered = sorted(late_ms)
    return {
        "n": len(ordered),
        "p50": round(ordered[len(ordered) // 2], 2),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
    }


def paced_run(
    *, rate: float, seconds: float, senders: int, make_sender: Callable[[], Callable[[], int]]
) -> dict:
    """Send `rate` requests/s for `seconds` through `senders` threads, each with its own
    `make_sender()` (a callable sending one request, returning its HTTP status)."""
    schedule: queue.Queue = queue.Queue()
    for offset in send_times(rate, seconds):
        schedule.put(offset)
    statuses: dict[int, int] = {}
    late_ms: list[float] = []
    latency_ms: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.05

    def sender() -> None:
        send = make_sender()
        while True:
            try:
                offset = schedule.get_nowait()
            except queue.Empty:
                return
            due = start + offset
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            late = max(0.0, (time.perf_counter() - due) * 1000)
            status = send()
            answered = (time.perf_counter() - due) * 1000
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                late_ms.append(late)
                latency_ms.append(answered)

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    elapsed = time.perf_counter() - start
    sent = sum(statuses.values())
    return {
        "rate_asked": rate,
        "seconds": round(elapsed, 2),
        "sent": sent,
        "rate_sent": round(sent / elapsed, 1) if elapsed > 0 else 0.0,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "lateness_ms": lateness_summary(late_ms),
        "latency_ms": lateness_summary(latency_ms),
    }
