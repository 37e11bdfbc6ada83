"""The sustained-capacity mode's pure parts (bench/capacity.py): the verdict on one probe
and the search for the highest sustained rate (the probes themselves need a live stack)."""

from __future__ import annotations

import io
from http.server import BaseHTTPRequestHandler

import pytest

from bench.capacity import CapacityConfig, CapacitySearch, capacity_report, probe, probe_verdict
from bench.cli import parse_args
from bench.pacing import paced_run
from bench.tests.local_server import serving

pytestmark = pytest.mark.unit


def _probe(**overrides) -> dict:
    probe = {
        "rate_asked": 300.0,
        "rate_sent": 299.0,
        "statuses": {"201": 18000},
        "latency_ms": {"p99": 40.0},
        "lateness_ms": {"p99": 1.0},
        "outbox_oldest_s": 0.2,
    }
    return {**probe, **overrides}


def test_a_probe_sustains_when_every_condition_holds():
    assert probe_verdict(_probe()) == []


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"latency_ms": {"p99": 100.0}}, "p99 100.0 ms >= 100 ms"),
        ({"outbox_oldest_s": 1.0}, "outbox's oldest row 1.0 s >= 1 s"),
        ({"statuses": {"201": 17000, "503": 1}}, "1 answers not 2xx"),
        ({"rate_sent": 250.0}, "sent 250.0/s of 300.0/s"),
    ],
)
def test_a_probe_fails_naming_each_condition_missed(overrides, reason):
    assert probe_verdict(_probe(**overrides)) == [reason]


def test_a_late_client_is_counted_in_the_latency_not_on_its_own():
    """Answers are timed from when they were due: lateness alone fails nothing."""
    assert probe_verdict(_probe(lateness_ms={"p99": 30.0})) == []


def test_the_baseline_has_no_outbox_to_watch():
    assert probe_verdict(_probe(outbox_oldest_s=None)) == []


def test_the_search_grows_until_a_failure_then_halves_the_gap():
    search = CapacitySearch(start=100, factor=2.0, resolution=0.1, max_probes=10)
    asked = []
    while (rate := search.next_rate()) is not None:
        asked.append(rate)
        search.record(rate, sustained=rate <= 330)
    assert asked[:3] == [100, 200, 400]
    assert asked[3:] == [300, 350, 325]  # between the last pass and the first failure
    assert search.best == 325


def test_the_search_stops_after_its_probes_and_when_the_start_fails():
    search = CapacitySearch(start=100, factor=2.0, resolution=0.01, max_probes=2)
    search.record(search.next_rate(), sustained=True)
    search.record(search.next_rate(), sustained=True)
    assert search.next_rate() is None and search.best == 200
    failing = CapacitySearch(start=100, factor=2.0, resolution=0.1, max_probes=10)
    failing.record(failing.next_rate(), sustained=False)
    assert failing.next_rate() == 50
    failing.record(50, sustained=False)
    assert failing.next_rate() == 25


def test_the_report_gives_the_ratio_to_the_baseline_and_the_target():
    report = capacity_report(project={"best": 240.0}, baseline={"best": 300.0})
    assert (report["ratio"], report["meets_target"]) == (0.8, True)
    assert capacity_report(project={"best": None}, baseline={"best": 300.0})["ratio"] is None


def test_a_paced_run_times_each_answer_from_when_it_was_due():
    """Open loop: a request that left late counts its lateness in its latency."""

    def make_sender():
        return lambda: 200

    result = paced_run(rate=200, seconds=0.2, senders=2, make_sender=make_sender)
    assert result["latency_ms"]["n"] == result["sent"] == 40
    assert result["latency_ms"]["p99"] >= result["lateness_ms"]["p99"]


class _Created(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def created_url():
    with serving(_Created) as url:
        yield url


def _config(url: str) -> CapacityConfig:
    options = parse_args(["capacity", "--capacity-seconds", "0.4", "--capacity-senders", "4"])
    return CapacityConfig.from_options(options, base_url=url, baseline_url=url)


def test_a_baseline_probe_sends_its_rate_open_loop_and_keeps_the_clients_share(created_url):
    result = probe(_config(created_url), [created_url], 50.0, watch_outbox=False)
    assert (result["sent"], result["statuses"], result["outbox_oldest_s"]) == (
        20,
        {"201": 20},
        None,
    )
    assert result["latency_ms"]["n"] == 20 and 0 <= result["client_cpu_share"]
    # its verdict holds at most the p99 (timing, on a loaded machine), never a send failure
    assert all(reason.startswith("p99") for reason in result["verdict"])
    assert "drain_seconds" not in result  # the baseline leaves no backlog


def test_both_searches_run_interleaved_until_done(monkeypatch, created_url):
    import bench.capacity as capacity

    asked = []

    def fake_probe(config, url, rate, *, watch_outbox):
        asked.append(("project" if watch_outbox else "baseline", rate))
        sustained = rate <= (150 if watch_outbox else 200)
        return {
            "verdict": [] if sustained else ["p99"],
            "latency_ms": {},
            "lateness_ms": {},
            "outbox_oldest_s": None,
            "client_cpu_share": 0.0,
            "load_average": 1.0,
        }

    monkeypatch.setattr(capacity, "probe", fake_probe)
    monkeypatch.setattr(capacity, "wait_until_quiet", lambda: True)
    config = _config(created_url)
    config.max_probes = 3
    report = capacity.run_capacity(config, io.StringIO())
    assert asked == [
        ("baseline", 100.0),
        ("project", 100.0),
        ("baseline", 150.0),
        ("project", 150.0),
        ("baseline", 225.0),
        ("project", 225.0),
    ]
    assert (report["baseline"]["best"], report["project"]["best"], report["ratio"]) == (
        150.0,
        150.0,
        1.0,
    )
    assert "sustained creates: project 150.0/s, baseline 150.0/s, ratio 1.0" in (
        capacity.format_capacity(report)
    )
