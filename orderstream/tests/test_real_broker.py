"""What only a broker that keeps its data can show: a broker restart and a scale-out under load.

Apache Kafka (BROKER=kafka) only: Tansu keeps everything in memory, so its restart loses
every topic. The real processes run as in test_faults.py (processes.py), clients write
through them (ledger.py) and every accepted write must be applied once, in effect.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from testkit import processes
from testkit.ledger import Load, Mix, Writer, assert_every_write_applied, settle

pytestmark = [
    pytest.mark.processes,
    pytest.mark.broker,
    pytest.mark.skipif(
        os.environ.get("BROKER", "tansu") != "kafka" or bool(os.environ.get("TEST_KAFKA_BROKERS")),
        reason="needs the session's own Apache Kafka (BROKER=kafka): Tansu keeps data in "
        "memory, a restart loses every topic",
    ),
]

BROKER_DOWN = 8  # seconds between the broker's exit and its start
SETTLE = 60  # seconds for the group to settle and catch up after a change


def show(table: str, capsys) -> None:
    with capsys.disabled():
        print(table, flush=True)


def test_a_broker_restart_under_load_loses_no_accepted_write(
    six_partition_topics, kafka_broker, tmp_path, capsys
):
    """The broker is stopped (SIGTERM, a controlled shutdown) and started again on the same
    port and data directory while clients create and update orders: every accepted write is
    applied, none twice, no order goes back a version; a waiting POST made while the broker
    is away answers 202 (the outbox keeps its event) and its write is applied later."""
    with (
        processes.scratch_databases("orderstream_restart") as scratch,
        processes.Deployment(scratch, six_partition_topics, tmp_path) as deployment,
    ):
        try:
            deployment.launch(apis=1, api_workers=2, workers=2)
            api = deployment.apis[0]
            load = Load([api.base_url], scratch["worker"], writers=4, mix=Mix(delete=0))
            timings = {}
            probe = Writer(load.ledger, [api.base_url], load.stop, Mix())
            outage_answers = []

            def restart_broker() -> None:
                """Stop the broker; while it is away, make waiting POSTs; start it again."""
                began = time.monotonic()
                kafka_broker.stop()
                timings["stop"] = time.monotonic() - began
                load.windows.enter("broker down")
                time.sleep(2)
                outage_answers.extend(probe.create(wait_mode=m) for m in ("wait", "wait=2"))
                load.windows.enter("broker starting")
                began = time.monotonic()
                kafka_broker.start()
                timings["start"] = time.monotonic() - began
                load.windows.enter("broker back")

            load.run([("broker SIGTERM", restart_broker)], lead=5, gap=10, tail=10)
        finally:
            if not kafka_broker.running:  # one node or all of a cluster
                kafka_broker.start()  # the rest of the session needs it
        notes = [
            f"broker stop took {timings.get('stop', 0):.1f} s,"
            f" start {timings.get('start', 0):.1f} s; logs in {tmp_path}",
            f"waiting creates while the broker was down: {outage_answers}",
            f"first 200 after the broker was back: {first_200_after(load, 'broker back')}"
            if "broker back" in load.windows.started
            else "the broker did not come back",
        ]
        verdict, table = settle(load, scratch, api.base_url, "broker restart under load", notes)
        show(table, capsys)
        if verdict.problems:
            table += deployment.log_excerpts()

    assert_every_write_applied(load, verdict, table)
    assert [status for status, _ in outage_answers] == [202, 202], outage_answers


def first_200_after(load: Load, window: str) -> str:
    """How long after `window` began the first 200 (an ACK came back) was answered."""
    began = load.windows.started[window]
    times = [
        a.started + a.seconds - began
        for a in load.ledger.attempts
        if a.status == 200 and a.started + a.seconds >= began
    ]
    return f"{min(times):.1f} s" if times else "none"


def test_scale_out_moves_partitions_and_applies_every_write_once(
    six_partition_topics, kafka_broker, tmp_path, capsys
):
    """Two API instances (two API servers) and three workers in one group under load;
    one worker is SIGKILLed and another started: the partitions move to the live workers,
    every accepted write is applied once in effect, the group's lag returns to 0, and a
    waiting POST through either API instance then gets its 200."""
    with (
        processes.scratch_databases("orderstream_scale") as scratch,
        processes.Deployment(scratch, six_partition_topics, tmp_path) as deployment,
    ):
        deployment.launch(apis=2, api_workers=1, workers=3)
        urls = [api.base_url for api in deployment.apis]
        before = {w.process.pid: processes.worker_partitions(w) for w in deployment.workers}
        load = Load(urls, scratch["worker"], writers=6)
        killed = deployment.workers[0]
        moved = {}

        def kill_worker() -> None:
            """SIGKILL, then wait (under load) for the survivors to take every partition."""
            os.killpg(killed.process.pid, signal.SIGKILL)
            killed.process.wait(timeout=10)
            deployment.workers.remove(killed)
            deployment.wait_until_consuming(timeout=SETTLE)
            moved.update(
                {w.process.pid: processes.worker_partitions(w) for w in deployment.workers}
            )

        load.run(
            [("worker SIGKILL", kill_worker), ("worker added", deployment.start_worker)],
            lead=8,
            gap=5,
            tail=5,
        )
        deployment.wait_until_consuming(timeout=SETTLE)
        after = {w.process.pid: processes.worker_partitions(w) for w in deployment.workers}
        processes.wait_until(lambda: deployment.group_lag() == 0, SETTLE, "a group lag of 0")
        probe = Writer(load.ledger, [], load.stop, Mix())
        answers = {}
        for url in urls:
            probe.base_urls = [url]
            answers[url] = [probe.create(wait_mode="wait") for _ in range(3)]
        notes = [
            f"partitions (pid: partitions) before: {before}; {killed.process.pid} SIGKILLed",
            f"partitions once the survivors took over: {moved}",
            f"partitions after a worker was added: {after}",
            f"waiting creates after the rebalance: {answers}",
            f"logs in {tmp_path}",
        ]
        verdict, table = settle(load, scratch, urls[0], "scale-out under load", notes)
        show(table, capsys)
        if verdict.problems:
            table += deployment.log_excerpts()

    assert_every_write_applied(load, verdict, table)
    assert before[killed.process.pid], "the killed worker held no partition"
    assert killed.process.pid not in after
    assert before[killed.process.pid] <= set().union(*moved.values())
    for url, created in answers.items():
        assert [status for status, _ in created] == [200] * 3, (url, created)
        assert {answer["status"] for _, answer in created} == {"created"}, (url, created)
