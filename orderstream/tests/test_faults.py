"""One fault after another under a minute of load: no accepted write is lost or applied twice.

The real processes run as a deployment runs them: one API server (granian) with 2 workers
(compose/start-api.sh) and two `manage.py run_worker` in one group, on scratch databases,
the test Redis, the session's broker and a 6-partition events topic of the test's own.
Six clients write (creates, updates, deletes; waiting for the ACK or not) while, one after
another: a worker is SIGKILLed and restarted, the broker is frozen for 10 s (SIGSTOP; on
KAFKA_NODES=3 every node at once), a API worker is SIGKILLed, Redis is paused, the
worker database's connections are cut, and a worker is stopped with SIGTERM and restarted.
Then every accepted write must be applied within 90 s (ledger.py). The table of what
happened in each fault window is printed even when the test passes.

A 5xx fails the test too: none of these faults touches the API's own database, and contract.md
has the API answer 202 while the broker is away, so a 5xx here is a broken promise. It is
not an acceptance, though: its write is checked like any unanswered one (the API database
says whether it was committed, and then it must be applied).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from testkit import processes
from testkit.ledger import Load, assert_every_write_applied, redis_client, settle
from testkit.outages import broker_frozen

pytestmark = [pytest.mark.faults, pytest.mark.broker, pytest.mark.processes]

LOAD_LEAD = 5  # seconds of load before the first fault
GAP = 5  # seconds of recovery after each fault
BROKER_FROZEN = 10
REDIS_PAUSE_MS = 5000
CONVERGE_TIMEOUT = 90


class Faults:
    """The faults, each returning once it is over (its effects may last longer)."""

    def __init__(self, deployment: processes.Deployment, broker, api: processes.ApiInstance):
        self.deployment = deployment
        self.broker = broker
        self.api = api
        self.notes: list[str] = []

    def kill_worker(self) -> None:
        worker = self.deployment.workers[0]
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        self.deployment.restart_worker(worker)

    def freeze_broker(self) -> None:
        with broker_frozen(self.broker):
            time.sleep(BROKER_FROZEN)

    def kill_api_worker(self) -> None:
        pid = self.api.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)

    def pause_redis(self) -> None:
        client = redis_client()
        try:
            client.execute_command("CLIENT", "PAUSE", REDIS_PAUSE_MS)
        finally:
            client.close()

    def cut_worker_database(self) -> None:
        cut = processes.terminate_backends(self.deployment.scratch["worker"])
        self.notes.append(f"worker database: {cut} connections terminated")

    def stop_worker(self) -> None:
        worker = self.deployment.workers[-1]
        started = time.monotonic()
        code = worker.stop(timeout=30)
        self.notes.append(
            f"worker SIGTERM: exited with {code} after {time.monotonic() - started:.1f} s"
        )
        self.deployment.restart_worker(worker)

    def schedule(self) -> list[tuple[str, Callable[[], object]]]:
        return [
            ("worker SIGKILL", self.kill_worker),
            ("broker SIGSTOP 10 s", self.freeze_broker),
            ("API worker SIGKILL", self.kill_api_worker),
            ("Redis CLIENT PAUSE 5 s", self.pause_redis),
            ("worker db terminated", self.cut_worker_database),
            ("worker SIGTERM", self.stop_worker),
        ]


def test_no_accepted_write_is_lost_or_applied_twice_through_a_series_of_faults(
    six_partition_topics, kafka_broker, tmp_path, capsys
):
    if kafka_broker is None:
        pytest.skip("needs the session's own broker (TEST_KAFKA_BROKERS is set): it is frozen")
    started = time.monotonic()
    with (
        processes.scratch_databases("orderstream_faults") as scratch,
        processes.Deployment(scratch, six_partition_topics, tmp_path) as deployment,
    ):
        deployment.launch(apis=1, api_workers=2, workers=2)
        api = deployment.apis[0]

        faults = Faults(deployment, kafka_broker, api)
        load = Load([api.base_url], scratch["worker"], writers=6)
        load.run(faults.schedule(), lead=LOAD_LEAD, gap=GAP, tail=GAP)
        notes = [*faults.notes, f"broker {os.environ.get('BROKER', 'tansu')}"]
        verdict, table = settle(load, scratch, api.base_url, "faults under load", notes)
        table += f"\ntest took {time.monotonic() - started:.0f} s, logs in {tmp_path}"
        with capsys.disabled():
            print(table, flush=True)
        if verdict.problems:
            table += deployment.log_excerpts()
    assert_every_write_applied(load, verdict, table)
