"""Every write the API accepted under load, and the check that the pipeline applied each once.

`Writer` threads send creates, updates and deletes to POST /orders, waiting for the ACK or
not, and record in a `Ledger` each write the API accepted (200 or 202), per order and in
order. A write whose answer never came (timeout, connection cut, 5xx) is retried with the
same Idempotency-Key; if it stays unknown, its order is written no more and the API
database decides at the end whether it counts (the row's version says whether it was
committed). `check` then compares the last accepted write of every order with the worker's
database, Redis and GET /orders/{id}, and the worker's processed events with the API's
outbox: nothing lost, nothing applied twice, nothing else. `VersionMonitor` samples the
versions in Redis and in the worker's database during the load: an order never moves back.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg2
import redis
from django.conf import settings

from testkit.processes import connect

CENT = Decimal("0.01")
# How a write waits for the worker's ACK: the default wait (ORDER_ACK_WAIT_TIMEOUT),
# at most 2 s, or not at all (README, "Waiting for the ACK").
WAIT_MODES = {
    "wait": ("", {}),
    "wait=2": ("", {"Prefer": "wait=2"}),
    "no wait": ("?wait=false", {}),
}
WAIT_MODE_WEIGHTS = {"wait": 35, "wait=2": 15, "no wait": 50}
ACK_STATUS = {"create": "created", "update": "updated", "delete": "deleted"}
CLIENT_TIMEOUT = 25.0  # the ACK wait (10 s) and a listener that is not positioned yet (1 s)
ATTEMPTS = 4  # per write: the first and three retries with the same Idempotency-Key


# ------------------------------------------------------------------------------
# The fault windows: which fault was under way when a request started
# ------------------------------------------------------------------------------
class Windows:
    """The named periods of a test (a fault and the recovery after it), one after another."""

    def __init__(self, first: str = "baseline"):
        self._lock = threading.Lock()
        self.started: dict[str, float] = {first: time.monotonic()}
        self.current = first

    def enter(self, name: str) -> None:
        with self._lock:
            self.started[name] = time.monotonic()
            self.current = name

    def durations(self, until: float) -> dict[str, float]:
        names = list(self.started)
        ends = [self.started[n] for n in names[1:]] + [until]
        return {n: end - self.started[n] for n, end in zip(names, ends, strict=True)}


# ------------------------------------------------------------------------------
# What was sent and what the API answered
# ------------------------------------------------------------------------------
@dataclass
class Write:
    """One write of an order, as sent (a delete carries no payload: the stored one is kept)."""

    kind: str
    payload: dict | None
    window: str


@dataclass
class Attempt:
    """One HTTP request: the window it started in, how it waited, what it got."""

    window: str
    kind: str
    wait_mode: str
    api: str
    status: int | None  # None: no answer (see `failure`)
    failure: str = ""  # "timeout" or "connection"
    answer: dict | None = None
    started: float = 0.0  # time.monotonic()
    seconds: float = 0.0


@dataclass
class OrderHistory:
    """The writes of one order the API accepted, in order, and one whose fate is unknown."""

    user_id: str
    external_id: str
    order_id: str | None = None
    accepted: list[Write] = field(default_factory=list)
    unsure: Write | None = None


@dataclass(frozen=True)
class Expected:
    """The state an order must end in."""

    version: int
    status: str  # the worker's order status: done or deleted
    payload: dict
    amount: Decimal
    window: str  # of the write that set it


def expected_state(writes: list[Write]) -> Expected:
    payload = next(w.payload for w in reversed(writes) if w.payload is not None)
    status = "deleted" if any(w.kind == "delete" for w in writes) else "done"
    return Expected(len(writes), status, payload, payload_amount(payload), writes[-1].window)


def payload_amount(payload: dict) -> Decimal:
    """contract.md's amount for the payloads the writers send (an amount, or priced items)."""
    if "amount" in payload:
        return Decimal(payload["amount"]).quantize(CENT)
    total = sum(Decimal(str(item["price"])) * item.get("qty", 1) for item in payload["items"])
    return Decimal(total).quantize(CENT)


def post_order(
    base_url: str, body: dict, wait_mode: str, key: str
) -> tuple[int | None, dict | None, str]:
    """POST /orders; (status, answer, failure) with status None when no answer came."""
    query, headers = WAIT_MODES[wait_mode]
    request = urllib.request.Request(
        f"{base_url}/orders{query}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": key, **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT) as response:
            return response.status, json.loads(response.read()), ""
    except urllib.error.HTTPError as exc:
        return exc.code, _error_body(exc), ""
    except TimeoutError:
        return None, None, "timeout"
    except (OSError, http.client.HTTPException) as exc:
        # A process killed mid-answer: refused, reset, or a body cut short (IncompleteRead).
        failure = "timeout" if "timed out" in str(exc) else "connection"
        return None, None, failure


def _error_body(error: urllib.error.HTTPError) -> dict:
    """The JSON body of an error answer, or what could be read of it."""
    try:
        raw = error.read()
    except (OSError, http.client.HTTPException) as exc:
        return {"unreadable": repr(exc)}
    try:
        return json.loads(raw)
    except ValueError:
        return {"body": raw[:200].decode(errors="replace")}


class Ledger:
    """Every order the writers made and every request they sent; safe across threads."""

    def __init__(self, windows: Windows):
        self.windows = windows
        self._lock = threading.Lock()
        self.orders: list[OrderHistory] = []
        self.attempts: list[Attempt] = []
        # Answers out of contract: a 4xx for a valid write (a 409 for a change of an order
        # not deleted included), or a change of a deleted order accepted.
        self.violations: list[str] = []

    def add_order(self, order: OrderHistory) -> None:
        with self._lock:
            self.orders.append(order)

    def add_attempt(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)

    def known_order_ids(self) -> list[str]:
        with self._lock:
            return [o.order_id for o in self.orders if o.order_id]

    def server_errors(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status and a.status >= 500]


# ------------------------------------------------------------------------------
# The clients
# ------------------------------------------------------------------------------
@dataclass
class Mix:
    """Relative weights of the operations a writer picks and of how it waits; the pause
    of a writer between two writes."""

    create: int = 35
    update: int = 50
    delete: int = 12
    change_deleted: int = 3  # an update of a deleted order: the answer must be a 409
    waits: dict[str, int] = field(default_factory=lambda: dict(WAIT_MODE_WEIGHTS))
    pause: float = 0.0  # seconds


class Writer(threading.Thread):
    """One client: a user of its own, writing its orders until `stop` is set."""

    def __init__(self, ledger: Ledger, base_urls: list[str], stop: threading.Event, mix: Mix):
        super().__init__(daemon=True, name="writer")
        self.ledger = ledger
        self.base_urls = base_urls
        self.stop_event = stop
        self.mix = mix
        self.user_id = str(uuid.uuid4())
        self.random = random.Random()
        self.live: list[OrderHistory] = []
        self.deleted: list[OrderHistory] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.write_once()
                self.stop_event.wait(self.mix.pause)
        except BaseException as exc:  # reported by the test through `error`
            self.error = exc
            raise

    def write_once(self) -> None:
        operation = self.random.choices(
            ["create", "update", "delete", "change_deleted"],
            [self.mix.create, self.mix.update, self.mix.delete, self.mix.change_deleted],
        )[0]
        if operation == "change_deleted" and self.deleted:
            self.send(self.random.choice(self.deleted), "update", expect_conflict=True)
        elif operation in ("update", "delete") and len(self.live) >= 3:
            self.send(self.random.choice(self.live), operation)
        else:
            self.create()

    def create(self, wait_mode: str | None = None) -> tuple[int | None, dict | None]:
        """Create an order (waiting as `wait_mode` says, else as the mix draws)."""
        order = OrderHistory(user_id=self.user_id, external_id=f"X-{uuid.uuid4().hex[:12]}")
        self.ledger.add_order(order)
        return self.send(order, "create", wait_mode=wait_mode)

    def payload(self, order: OrderHistory) -> dict:
        revision = len(order.accepted) + 1
        if self.random.random() < 0.5:
            amount = f"{self.random.randint(0, 99999) / 100:.2f}"
            return {"id": order.external_id, "amount": amount, "rev": revision, "note": "ok ✓"}
        items = [
            {"price": self.random.randint(1, 9999) / 100, "qty": self.random.randint(1, 5)}
            for _ in range(self.random.randint(1, 3))
        ]
        return {"id": order.external_id, "items": items, "rev": revision}

    def send(
        self,
        order: OrderHistory,
        kind: str,
        expect_conflict: bool = False,
        wait_mode: str | None = None,
    ) -> tuple[int | None, dict | None]:
        """Send one write (retried while unanswered), record it; the final answer."""
        body: dict = {"user_id": order.user_id}
        if order.order_id:
            body["order_id"] = order.order_id
        payload = None if kind == "delete" else self.payload(order)
        if kind == "delete":
            body["status"] = "deleted"
        else:
            body["payload"] = payload
        waits = self.mix.waits
        wait_mode = wait_mode or self.random.choices(list(waits), list(waits.values()))[0]
        write = Write(kind, payload, self.ledger.windows.current)
        status, answer = self.send_with_retries(body, kind, wait_mode, str(uuid.uuid4()))
        if status in (200, 202):
            if expect_conflict:
                self.ledger.violations.append(f"change of deleted order {order.order_id}: {status}")
                return status, answer
            order.order_id = order.order_id or answer["order_id"]
            order.accepted.append(write)
            if kind == "delete":
                self.live.remove(order)
                self.deleted.append(order)
            elif kind == "create":
                self.live.append(order)
        elif status is None or status >= 500:
            order.unsure = write  # written no more; the API database says at the end
            if order in self.live:
                self.live.remove(order)
        elif not (status == 409 and expect_conflict):
            self.ledger.violations.append(f"{kind} of {order.order_id}: {status} {answer}")
            if order in self.live:
                self.live.remove(order)
        return status, answer

    def send_with_retries(self, body: dict, kind: str, wait_mode: str, key: str):
        status = answer = None
        for attempt_number in range(ATTEMPTS):
            base_url = self.random.choice(self.base_urls)
            window = self.ledger.windows.current
            began = time.monotonic()
            status, answer, failure = post_order(base_url, body, wait_mode, key)
            seconds = time.monotonic() - began
            self.ledger.add_attempt(
                Attempt(window, kind, wait_mode, base_url, status, failure, answer, began, seconds)
            )
            if status is not None and status < 500:
                return status, answer
            if self.stop_event.is_set() and attempt_number:
                break
            time.sleep(0.5 * 2**attempt_number)
        return status, answer


# ------------------------------------------------------------------------------
# Watching versions during the load
# ------------------------------------------------------------------------------
_RESULT_VERSION = re.compile(rb'^\{"version":(\d+)')


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)


class VersionMonitor(threading.Thread):
    """Samples every known order's version in Redis and in the worker's database about
    once a second and records any that went down."""

    def __init__(self, ledger: Ledger, worker_db: str, stop: threading.Event):
        super().__init__(daemon=True, name="version-monitor")
        self.ledger = ledger
        self.worker_db = worker_db
        self.stop_event = stop
        self.highest: dict[tuple[str, str], int] = {}
        self.regressions: list[str] = []
        self.samples = 0

    def run(self) -> None:
        client = redis_client()
        conn = None
        while not self.stop_event.wait(1.0):
            order_ids = self.ledger.known_order_ids()
            try:
                self.observe("redis", redis_versions(client, order_ids))
                conn = conn or connect(self.worker_db)
                self.observe("worker db", worker_versions(conn, order_ids))
                self.samples += 1
            except (redis.RedisError, psycopg2.Error):
                conn = None  # paused Redis or cut connections: sample again next time

    def observe(self, where: str, versions: dict[str, int]) -> None:
        for order_id, version in versions.items():
            before = self.highest.get((where, order_id), 0)
            if version < before:
                self.regressions.append(f"{where}: {order_id} went from v{before} to v{version}")
            self.highest[(where, order_id)] = max(before, version)


def redis_results(client: redis.Redis, order_ids: list[str]) -> dict[str, bytes]:
    """The raw `order_result:<order_id>` values that exist, 500 keys a round trip."""
    found = {}
    for start in range(0, len(order_ids), 500):
        chunk = order_ids[start : start + 500]
        values = client.mget([f"order_result:{i}" for i in chunk])
        found.update((i, raw) for i, raw in zip(chunk, values, strict=True) if raw is not None)
    return found


def redis_versions(client: redis.Redis, order_ids: list[str]) -> dict[str, int]:
    versions = {}
    for order_id, raw in redis_results(client, order_ids).items():
        if match := _RESULT_VERSION.match(raw):
            versions[order_id] = int(match.group(1))
    return versions


def worker_versions(conn, order_ids: list[str]) -> dict[str, int]:
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT order_id::text, version FROM orders_worker_processedorder "
            "WHERE order_id = ANY(%s::uuid[])",
            [order_ids],
        )
        return dict(cursor.fetchall())


class Load:
    """Writers and a version monitor running while a test breaks things one after another.

    `run` enters each fault's window, calls the fault (which returns once it is over, e.g.
    after the broker is thawed), lets the system recover for `gap` seconds and goes on;
    the writers stop after the last window's `tail`, wherever the test failed.
    """

    def __init__(
        self, base_urls: list[str], worker_db: str, writers: int = 6, mix: Mix | None = None
    ):
        self.windows = Windows()
        self.ledger = Ledger(self.windows)
        self.stop = threading.Event()
        self.writers = [
            Writer(self.ledger, base_urls, self.stop, mix or Mix()) for _ in range(writers)
        ]
        self.monitor = VersionMonitor(self.ledger, worker_db, self.stop)
        self.ended = 0.0

    def run(
        self, faults: list[tuple[str, Callable[[], object]]], lead: float, gap: float, tail: float
    ) -> None:
        for thread in [*self.writers, self.monitor]:
            thread.start()
        try:
            time.sleep(lead)
            for name, fault in faults:
                self.windows.enter(name)
                fault()
                time.sleep(gap)
            self.windows.enter("after the faults")
            time.sleep(tail)
        finally:
            self.stop.set()
            self.ended = time.monotonic()
            for thread in [*self.writers, self.monitor]:
                thread.join(timeout=2 * CLIENT_TIMEOUT * ATTEMPTS)

    def writer_errors(self) -> list[BaseException]:
        """What made writers stop early (their orders are still checked)."""
        return [w.error for w in self.writers if w.error]


# ------------------------------------------------------------------------------
# The check of every accepted write
# ------------------------------------------------------------------------------
@dataclass
class Problem:
    """Something wrong with one order after the load."""

    order_id: str
    kind: str  # lost, twice or wrong
    window: str  # of the last accepted write of the order
    detail: str


@dataclass
class Verdict:
    """The outcome of one check of every accepted write."""

    orders: int
    accepted: int
    unsure_committed: int
    problems: list[Problem]
    out_of_order: int  # events handled after a newer event of their order (allowed)


def _rows(dbname: str, query: str, order_ids: list[str]) -> list[tuple]:
    conn = connect(dbname)
    try:
        with conn.cursor() as cursor:
            cursor.execute(query, [order_ids])
            return cursor.fetchall()
    finally:
        conn.close()


def _resolve_unsure_creates(ledger: Ledger, api_db: str) -> None:
    """Give an id to the orders whose create got no answer but was committed."""
    unknown = {o.external_id: o for o in ledger.orders if o.order_id is None}
    if not unknown:
        return
    rows = _rows(
        api_db,
        "SELECT payload->>'id', order_id::text FROM orders_api_order "
        "WHERE payload->>'id' = ANY(%s)",
        list(unknown),
    )
    for external_id, order_id in rows:
        unknown[external_id].order_id = order_id


class Snapshot:
    """What the API database, the worker database and Redis hold for the ledger's orders."""

    def __init__(self, ledger: Ledger, databases: dict[str, str]):
        _resolve_unsure_creates(ledger, databases["default"])
        self.orders = [o for o in ledger.orders if o.order_id]
        ids = [o.order_id for o in self.orders]
        api, worker = databases["default"], databases["worker"]
        self.api_versions = dict(
            _rows(
                api,
                "SELECT order_id::text, version FROM orders_api_order "
                "WHERE order_id = ANY(%s::uuid[])",
                ids,
            )
        )
        self.outbox = defaultdict(list)
        for order_id, version, event_id in _rows(
            api,
            "SELECT order_id::text, version, event_id::text FROM orders_api_outboxevent "
            "WHERE order_id = ANY(%s::uuid[])",
            ids,
        ):
            self.outbox[order_id].append((version, event_id))
        self.processed = {
            row[0]: row[1:]
            for row in _rows(
                worker,
                "SELECT order_id::text, version, status, payload, amount "
                "FROM orders_worker_processedorder WHERE order_id = ANY(%s::uuid[])",
                ids,
            )
        }
        self.events = defaultdict(list)
        for order_id, version, event_id, processed_at in _rows(
            worker,
            "SELECT order_id::text, version, event_id::text, processed_at "
            "FROM orders_worker_processedevent WHERE order_id = ANY(%s::uuid[])",
            ids,
        ):
            self.events[order_id].append((version, event_id, processed_at))
        raw = redis_results(redis_client(), ids)
        self.results = {order_id: json.loads(value) for order_id, value in raw.items()}

    def expected(self, order: OrderHistory) -> Expected | str:
        """The state the order must be in, or why the API row itself is wrong (it lacks
        an accepted write, or holds one more than accepted and the unanswered one)."""
        api_version = self.api_versions.get(order.order_id)
        committed = order.accepted + ([order.unsure] if order.unsure else [])
        if api_version == len(committed) and committed:
            return expected_state(committed)
        if api_version == len(order.accepted) and order.accepted:
            return expected_state(order.accepted)
        return f"API row at v{api_version}, {len(order.accepted)} writes accepted"


def _state_problems(expected: Expected, status, payload, amount, where: str) -> list[str]:
    found = []
    if status != expected.status:
        found.append(f"{where} status {status!r}, expected {expected.status!r}")
    if payload != expected.payload:
        found.append(f"{where} payload {payload!r}, expected {expected.payload!r}")
    if amount is None or Decimal(str(amount)) != expected.amount:
        found.append(f"{where} amount {amount}, expected {expected.amount}")
    return found


def order_problems(snapshot: Snapshot, order: OrderHistory) -> list[tuple[str, str]]:
    """(kind, detail) of everything wrong with one order in the databases and Redis."""
    expected = snapshot.expected(order)
    if isinstance(expected, str):
        api_version = snapshot.api_versions.get(order.order_id) or 0
        return [("lost" if api_version < len(order.accepted) else "wrong", expected)]
    found: list[tuple[str, str]] = []
    stored = snapshot.processed.get(order.order_id)
    if stored is None or stored[0] < expected.version:
        found.append(
            ("lost", f"worker db at v{stored and stored[0]}, expected v{expected.version}")
        )
    elif stored[0] > expected.version:
        found.append(("wrong", f"worker db at v{stored[0]}, only v{expected.version} accepted"))
    else:
        found += [("wrong", p) for p in _state_problems(expected, *stored[1:], "worker db")]
    result = snapshot.results.get(order.order_id)
    if result is None or result.get("version", 0) < expected.version:
        found.append(("lost", f"Redis at v{result and result.get('version')}"))
    elif result["version"] > expected.version:
        found.append(("wrong", f"Redis at v{result['version']}, only v{expected.version} accepted"))
    else:
        state = (result["order_status"], result["payload"], result["amount"])
        found += [("wrong", p) for p in _state_problems(expected, *state, "Redis")]
    found += _event_problems(snapshot, order.order_id, expected.version)
    return found


def _event_problems(snapshot: Snapshot, order_id: str, version: int) -> list[tuple[str, str]]:
    """Each version 1..N published once by the API and handled once, under that event id."""
    published = Counter(v for v, _ in snapshot.outbox[order_id])
    handled = Counter(v for v, _, _ in snapshot.events[order_id])
    found = []
    if sorted(published.elements()) != list(range(1, version + 1)):
        found.append(
            ("wrong", f"outbox versions {sorted(published.elements())}, expected 1..v{version}")
        )
    if twice := sorted(v for v, count in handled.items() if count > 1):
        found.append(("twice", f"versions {twice} handled under more than one event id"))
    if missing := sorted(set(range(1, version + 1)) - set(handled)):
        found.append(("lost", f"events of versions {missing} never handled"))
    if {e for _, e, _ in snapshot.events[order_id]} - {e for _, e in snapshot.outbox[order_id]}:
        found.append(("wrong", "handled an event id the API never wrote"))
    return found


def _out_of_order(snapshot: Snapshot) -> int:
    count = 0
    for events in snapshot.events.values():
        times = [at for _, _, at in sorted(events)]
        count += sum(1 for a, b in itertools.pairwise(times) if b < a)
    return count


def check(ledger: Ledger, databases: dict[str, str], api_url: str | None = None) -> Verdict:
    """Every accepted write against the databases and Redis; with `api_url`, against
    GET /orders/{id} too (only once the rest holds: it is the slow part)."""
    snapshot = Snapshot(ledger, databases)
    problems = []
    unsure_committed = 0
    for order in snapshot.orders:
        expected = snapshot.expected(order)
        last = (
            expected if isinstance(expected, Expected) else (order.accepted or [order.unsure])[-1]
        )
        window = last.window
        if isinstance(expected, Expected) and expected.version > len(order.accepted):
            unsure_committed += 1
        for kind, detail in order_problems(snapshot, order):
            problems.append(Problem(order.order_id, kind, window, detail))
    if api_url and not problems:
        problems = _api_problems(snapshot, api_url)
    return Verdict(
        orders=len(snapshot.orders),
        accepted=sum(len(o.accepted) for o in ledger.orders),
        unsure_committed=unsure_committed,
        problems=problems,
        out_of_order=_out_of_order(snapshot),
    )


def _api_problems(snapshot: Snapshot, api_url: str) -> list[Problem]:
    def one(order: OrderHistory) -> list[Problem]:
        expected = snapshot.expected(order)
        try:
            with urllib.request.urlopen(f"{api_url}/orders/{order.order_id}", timeout=10) as r:
                view = json.loads(r.read())["order"]
        except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            return [Problem(order.order_id, "wrong", expected.window, f"GET failed: {exc}")]
        state = (view["status"], view["payload_json"], view["amount"])
        return [
            Problem(order.order_id, "wrong", expected.window, detail)
            for detail in _state_problems(expected, *state, "GET")
        ]

    with ThreadPoolExecutor(8) as pool:
        return [p for found in pool.map(one, snapshot.orders) for p in found]


def converge(
    ledger: Ledger, databases: dict[str, str], api_url: str, timeout: float
) -> tuple[Verdict, float]:
    """Check until everything holds or `timeout` passes; the last verdict and its time."""
    started = time.monotonic()
    while True:
        verdict = check(ledger, databases)
        elapsed = time.monotonic() - started
        if not verdict.problems:
            verdict = check(ledger, databases, api_url)
            if not verdict.problems:
                return verdict, elapsed
        if elapsed > timeout:
            return verdict, elapsed
        time.sleep(1.0)


# ------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------
COLUMNS = ["requests", "accepted", "200", "202", "409", "4xx", "5xx", "timeout", "conn err"]
COLUMNS += ["max s", "no answer", "lost", "twice", "wrong"]


def window_counts(ledger: Ledger, verdict: Verdict) -> dict[str, Counter]:
    """Per window (of its start): requests by answer and the slowest; writes left without
    an answer; orders lost, applied twice or wrong (window of their last accepted write)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for a in ledger.attempts:
        row = counts[a.window]
        row["requests"] += 1
        row["max s"] = max(row["max s"], round(a.seconds))
        if a.status in (200, 202):
            row["accepted"] += 1
            row[str(a.status)] += 1
        elif a.status == 409:
            row["409"] += 1
        elif a.status and a.status >= 500:
            row["5xx"] += 1
        elif a.status:
            row["4xx"] += 1
        else:
            row["timeout" if a.failure == "timeout" else "conn err"] += 1
    for order in ledger.orders:
        if order.unsure:
            counts[order.unsure.window]["no answer"] += 1
    for window, kind, _ in {(p.window, p.kind, p.order_id) for p in verdict.problems}:
        counts[window][kind] += 1
    return counts


def report(
    title: str,
    ledger: Ledger,
    verdict: Verdict,
    converge_seconds: float,
    load_end: float,
    notes: list[str] = (),
) -> str:
    """The table of a test: requests and problems per fault window, then the totals."""
    counts = window_counts(ledger, verdict)
    header = f"{'fault window':<24}{'secs':>5}" + "".join(f"{c:>10}" for c in COLUMNS)
    lines = [f"\n== {title} ==", header, "-" * len(header)]
    total: Counter = Counter()
    for name, seconds in ledger.windows.durations(load_end).items():
        row = counts.get(name, Counter())
        slowest = max(total["max s"], row["max s"])
        total.update(row)
        total["max s"] = slowest
        cells = "".join(f"{row.get(c, 0):>10}" for c in COLUMNS)
        lines.append(f"{name:<24}{seconds:>5.0f}{cells}")
    lines.append("-" * len(header))
    lines.append(f"{'total':<29}" + "".join(f"{total.get(c, 0):>10}" for c in COLUMNS))
    mislabelled = sum(
        1
        for a in ledger.attempts
        if a.status == 200 and a.answer and a.answer.get("status") != ACK_STATUS[a.kind]
    )
    lines.append(
        f"orders {verdict.orders}, accepted writes {verdict.accepted}"
        f" (+{verdict.unsure_committed} unanswered but committed, checked too);"
        f" {'converged' if not verdict.problems else 'NOT converged after'}"
        f" {converge_seconds:.1f} s after the load;"
        f" events handled after a newer one: {verdict.out_of_order};"
        f" 200s naming another status than the write: {mislabelled}"
    )
    lines += list(notes)
    for problem in verdict.problems[:20]:
        lines.append(f"  {problem.kind}: {problem.order_id} ({problem.window}): {problem.detail}")
    if len(verdict.problems) > 20:
        lines.append(f"  ... {len(verdict.problems) - 20} more problems")
    return "\n".join(lines)


def settle(
    load: Load, databases: dict[str, str], api_url: str, title: str, notes: list[str], timeout=90
) -> tuple[Verdict, str]:
    """Wait for every accepted write to be applied (at most `timeout` s); the verdict and
    the table to print."""
    verdict, seconds = converge(load.ledger, databases, api_url, timeout)
    monitor = load.monitor
    notes = [
        *notes,
        f"version regressions seen during the load: {len(monitor.regressions)}"
        f" ({monitor.samples} samples of Redis and the worker database)",
        *(f"writer crashed: {error!r}" for error in load.writer_errors()),
    ]
    return verdict, report(title, load.ledger, verdict, seconds, load.ended, notes)


def assert_every_write_applied(load: Load, verdict: Verdict, table: str) -> None:
    """Nothing lost, nothing twice, nothing wrong, never backwards; no answer out of contract
    (a 4xx other than a change of a deleted order, a 5xx)."""
    assert not verdict.problems, f"accepted writes not applied as accepted:{table}"
    assert not load.writer_errors(), f"a writer crashed: {load.writer_errors()[0]!r}"
    assert not load.monitor.regressions, load.monitor.regressions[:10]
    assert not load.ledger.violations, f"answers out of contract: {load.ledger.violations[:5]}"
    server_errors = load.ledger.server_errors()
    assert not server_errors, f"5xx answers: {server_errors[:5]}{table}"
