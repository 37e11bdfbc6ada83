"""The two Kafka drivers behind the ports (`orderstream/kafka/clients.py`, KAFKA_CLIENT).

Broker: a key goes to the same partition whichever driver produced it (librdkafka's
`murmur2_random` is Java's, and kafka-python's, partitioner). Unit: the confluent driver's
own logic, against a stand-in of librdkafka's consumer: batching, rebalance callbacks that
never raise, pauses that end with the assignment, commit answers matched to their commit,
error mapping, the configuration it builds.
"""

from __future__ import annotations

import logging
import time
import uuid
from types import SimpleNamespace

import confluent_kafka
import pytest
from confluent_kafka import KafkaError as CKError
from confluent_kafka import KafkaException
from confluent_kafka import TopicPartition as CKTopicPartition
from django.core.exceptions import ImproperlyConfigured

from devstack.ports import free_port
from orderstream.kafka import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OffsetAndMetadata,
    TopicPartition,
    clients,
    make_admin,
)
from orderstream.kafka.drivers import confluent, kafka_python
from orderstream.settings.base import env_choice

KEYS = [f"order-{i}".encode() for i in range(300)] + [uuid.uuid4().hex.encode() for _ in range(50)]


# ------------------------------------------------------------------------------ both drivers
def partitions_of_keys(producer, topic: str) -> dict[bytes, int]:
    deliveries = {key: producer.send(topic, key=key, value=b"v") for key in KEYS}
    producer.flush(timeout=30)
    mapped = {key: delivery.get(timeout=1).partition for key, delivery in deliveries.items()}
    producer.close(timeout=5)
    return mapped


@pytest.mark.broker
def test_a_key_goes_to_the_same_partition_with_either_driver(six_partition_topics, settings):
    topic = settings.ORDERS_EVENTS_TOPIC
    brokers = settings.KAFKA_BROKERS
    common = {"bootstrap_servers": brokers, "client_id": "test-keys", "acks": "all"}
    with_kafka_python = partitions_of_keys(
        kafka_python.KafkaProducer(enable_idempotence=True, **common), topic
    )
    with_confluent = partitions_of_keys(confluent.ConfluentProducer(**common), topic)
    assert len(set(with_kafka_python.values())) == 6  # the keys spread over every partition
    assert with_confluent == with_kafka_python


@pytest.mark.broker
@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_the_admin_port_creates_topics_counts_brokers_and_reads_size_limits(
    kafka_broker, kafka_bootstrap, settings, client
):
    settings.KAFKA_CLIENT = client
    topic = f"test.admin.{uuid.uuid4().hex[:8]}"
    admin = make_admin()
    try:
        admin.create_topics({topic: 2})
        admin.create_topics({topic: 2}, replication_factor=1, configs={})  # exists: no error
        assert topic in admin.topic_names()
        limit = admin.max_message_bytes(topic)
        assert limit is None or limit > 1000
        nodes = len(getattr(kafka_broker, "nodes", [kafka_broker]))
        assert admin.broker_count() == nodes if kafka_broker else admin.broker_count() >= 1
    finally:
        admin.close()


class ControllerNotKnownYet:
    """kafka-python's admin client whose first create names a controller its metadata does
    not list yet (seen once on a three-node cluster that had just started)."""

    made = 0

    def __init__(self, **config):
        type(self).made += 1
        self.first = type(self).made == 1
        self.created = []

    def create_topics(self, new_topics):
        if self.first:
            raise kafka_python.UnknownBrokerIdError(3)
        self.created += new_topics

    def close(self):
        pass


def test_the_kafka_python_admin_creates_again_with_fresh_metadata_when_the_controller_is_unknown(
    monkeypatch,
):
    monkeypatch.setattr(kafka_python, "KafkaAdminClient", ControllerNotKnownYet)
    monkeypatch.setattr(kafka_python, "RETRY_PAUSE_S", 0)
    monkeypatch.setattr(ControllerNotKnownYet, "made", 0)
    admin = kafka_python.KafkaPythonAdmin(bootstrap_servers=["127.0.0.1:9"])
    admin.create_topics({"t": 2}, replication_factor=3, configs={"min.insync.replicas": "2"})
    assert ControllerNotKnownYet.made == 2
    [topic] = admin._admin.created
    assert (topic.name, topic.num_partitions, topic.replication_factor) == ("t", 2, 3)
    assert topic.topic_configs == {"min.insync.replicas": "2"}


class ControllerNeverKnown(ControllerNotKnownYet):
    def create_topics(self, new_topics):
        raise kafka_python.UnknownBrokerIdError(3)


def test_the_kafka_python_admin_gives_up_after_its_attempts(monkeypatch):
    monkeypatch.setattr(kafka_python, "KafkaAdminClient", ControllerNeverKnown)
    monkeypatch.setattr(kafka_python, "RETRY_PAUSE_S", 0)
    monkeypatch.setattr(ControllerNeverKnown, "made", 0)
    admin = kafka_python.KafkaPythonAdmin(bootstrap_servers=["127.0.0.1:9"])
    with pytest.raises(kafka_python.UnknownBrokerIdError):
        admin.create_topics({"t": 1})
    assert ControllerNeverKnown.made == kafka_python.CREATE_ATTEMPTS


# ------------------------------------------------------------------------------ settings
def test_kafka_client_is_one_of_the_drivers(monkeypatch):
    monkeypatch.setenv("KAFKA_CLIENT", " Confluent ")
    assert env_choice("KAFKA_CLIENT", ("kafka-python", "confluent")) == "confluent"
    monkeypatch.delenv("KAFKA_CLIENT")
    assert env_choice("KAFKA_CLIENT", ("kafka-python", "confluent")) == "kafka-python"
    monkeypatch.setenv("KAFKA_CLIENT", "librdkafka")
    with pytest.raises(ImproperlyConfigured, match="KAFKA_CLIENT must be one of"):
        env_choice("KAFKA_CLIENT", ("kafka-python", "confluent"))


def test_make_consumer_and_producer_use_the_chosen_driver(settings):
    settings.KAFKA_BROKERS = ["127.0.0.1:9"]
    settings.KAFKA_CLIENT = "confluent"
    consumer = clients.make_consumer(group_id="g", client_id="t")
    try:
        assert isinstance(consumer, confluent.ConfluentConsumer)
    finally:
        consumer.close()
    with pytest.raises(KafkaError):  # as kafka-python's: no producer without a broker
        clients.make_producer(client_id="t", bootstrap_timeout_ms=200)


# ------------------------------------------------------------------------------ configuration
def test_the_producer_is_idempotent_with_acks_all_and_javas_partitioner():
    conf, probe = confluent.producer_config(
        {"bootstrap_servers": ["a:1", "b:2"], "retries": 5, "max_block_ms": 5, "linger_ms": 7}
    )
    assert conf["bootstrap.servers"] == "a:1,b:2"
    assert (conf["enable.idempotence"], conf["acks"]) == (True, "all")
    assert conf["partitioner"] == "murmur2_random"
    assert conf["linger.ms"] == 7
    assert "retries" not in conf and probe == 2.0  # waits for a broker as kafka-python's


def test_a_producer_given_the_api_version_waits_for_no_broker_as_kafka_pythons():
    _, probe = confluent.producer_config({"bootstrap_servers": ["a:1"], "api_version": (2, 5)})
    assert probe is None
    producer = confluent.ConfluentProducer(
        bootstrap_servers=[f"127.0.0.1:{free_port()}"], api_version=(2, 5)
    )
    producer.close(timeout=0)


def test_the_consumer_commits_only_what_the_project_commits():
    conf, max_records, groupless = confluent.consumer_config(
        {
            "bootstrap_servers": ["a:1"],
            "group_id": None,
            "max_poll_interval_ms": 6000,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 300,
            "fetch_max_wait_ms": 20,
            "max_poll_records": 7,
        }
    )
    assert (conf["enable.auto.commit"], conf["enable.auto.offset.store"]) == (False, False)
    assert conf["group.id"].startswith("orderstream-reader-") and groupless
    assert conf["partition.assignment.strategy"] == "cooperative-sticky"
    assert max_records == 7


def test_an_option_the_driver_does_not_know_is_refused():
    with pytest.raises(TypeError, match="compression_type"):
        confluent.producer_config({"bootstrap_servers": ["a:1"], "compression_type": "gzip"})


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (CKError.MSG_SIZE_TOO_LARGE, MessageSizeTooLargeError),
        (CKError.ILLEGAL_GENERATION, IllegalGenerationError),
        (CKError._ASSIGNMENT_LOST, CommitFailedError),
        (CKError._MSG_TIMED_OUT, KafkaTimeoutError),
        (CKError._TRANSPORT, confluent.LibrdkafkaError),
    ],
)
def test_librdkafka_errors_are_the_projects(code, kind):
    error = confluent.project_error(KafkaException(CKError(code)))
    assert type(error) is kind and isinstance(error, KafkaError)


def test_a_fatal_error_says_so():
    error = confluent.project_error(CKError(CKError._FATAL, "fenced", fatal=True))
    assert isinstance(error, confluent.KafkaFatalError)


# ------------------------------------------------------------------------------ the consumer
class Message:
    def __init__(self, partition, offset, error=None):
        self._partition, self._offset, self._error = partition, offset, error

    def error(self):
        return self._error

    def topic(self):
        return "t"

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def key(self):
        return b"k"

    def value(self):
        return b"v"

    def headers(self):
        return None

    def timestamp(self):
        return (1, 123)


class FakeLibrdkafka:
    """librdkafka's consumer as the driver uses it: queued messages, the calls it got."""

    def __init__(self, queued=()):
        self.queued = list(queued)
        self.calls: list[tuple] = []
        self.held: set[tuple[str, int]] = set()
        self.commit_error: KafkaException | None = None

    def poll(self, timeout):
        self.calls.append(("poll", timeout))
        return self.queued.pop(0) if self.queued else None

    def consume(self, n, timeout):
        self.calls.append(("consume", n, timeout))
        taken, self.queued = self.queued[:n], self.queued[n:]
        return taken

    def incremental_assign(self, partitions):
        self.held |= {(p.topic, p.partition) for p in partitions}

    def incremental_unassign(self, partitions):
        self.held -= {(p.topic, p.partition) for p in partitions}

    def assignment(self):
        return [CKTopicPartition(t, p) for t, p in sorted(self.held)]

    def pause(self, partitions):
        self.calls.append(("pause", sorted(p.partition for p in partitions)))

    def resume(self, partitions):
        self.calls.append(("resume", sorted(p.partition for p in partitions)))

    def commit(self, offsets, asynchronous):
        self.calls.append(("commit", asynchronous, [(p.partition, p.offset) for p in offsets]))
        if self.commit_error is not None:
            raise self.commit_error
        return None if asynchronous else offsets

    def committed(self, partitions, timeout):
        self.calls.append(("committed", timeout))
        return [CKTopicPartition(p.topic, p.partition, 7) for p in partitions]

    def seek(self, partition):
        self.calls.append(("seek", partition.partition, partition.offset))

    def get_watermark_offsets(self, partition, timeout=None, cached=False):
        self.calls.append(("watermarks", timeout))
        return 3, 12


def fake_consumer(queued=(), listener=None) -> tuple[confluent.ConfluentConsumer, FakeLibrdkafka]:
    consumer = confluent.ConfluentConsumer.__new__(confluent.ConfluentConsumer)
    fake = FakeLibrdkafka(queued)
    consumer._consumer = fake
    consumer._max_records = 500
    consumer._groupless = False
    consumer._listener = listener
    consumer._paused = set()
    consumer._commits = []
    consumer._in_revoke = False
    consumer._positions = {}
    consumer._starts = {}
    consumer._closed = True  # nothing to close
    return consumer, fake


def tps(*partitions) -> list[CKTopicPartition]:
    return [CKTopicPartition("t", p) for p in partitions]


def test_a_poll_returns_once_one_record_came_with_what_is_queued_up_to_the_limit():
    consumer, fake = fake_consumer([Message(0, 5), Message(1, 9), Message(0, 6), Message(1, 10)])
    batches = consumer.poll(timeout_ms=500, max_records=3)
    assert fake.calls == [("poll", 0.5), ("consume", 2, 0)]  # never waits for the rest
    assert {tp.partition: [r.offset for r in recs] for tp, recs in batches.items()} == {
        0: [5, 6],
        1: [9],
    }
    assert consumer.position(TopicPartition("t", 0)) == 7


def test_a_poll_skips_error_messages_and_raises_a_fatal_one():
    consumer, _ = fake_consumer(
        [Message(0, 1), Message(0, -1, CKError(CKError._MAX_POLL_EXCEEDED))]
    )
    assert [r.offset for r in consumer.poll(timeout_ms=0)[TopicPartition("t", 0)]] == [1]
    consumer, _ = fake_consumer([Message(0, -1, CKError(CKError._FATAL, "x", fatal=True))])
    with pytest.raises(confluent.KafkaFatalError):
        consumer.poll(timeout_ms=0)


class RaisingListener:
    def __init__(self):
        self.seen = []

    def on_partitions_assigned(self, assigned):
        self.seen.append(("assigned", sorted(tp.partition for tp in assigned)))
        raise RuntimeError("listener bug")

    def on_partitions_revoked(self, revoked):
        self.seen.append(("revoked", sorted(tp.partition for tp in revoked)))
        raise RuntimeError("listener bug")

    def on_partitions_lost(self, lost):
        self.seen.append(("lost", sorted(tp.partition for tp in lost)))


def test_rebalance_callbacks_take_the_assignment_first_and_never_raise():
    listener = RaisingListener()
    consumer, fake = fake_consumer(listener=listener)
    consumer._on_assign(fake, tps(0, 1))  # the listener's exception is logged, not raised
    assert consumer.assignment() == {TopicPartition("t", 0), TopicPartition("t", 1)}
    consumer._on_revoke(fake, tps(1))
    assert consumer.assignment() == {TopicPartition("t", 0)}
    assert listener.seen == [("assigned", [0, 1]), ("revoked", [1])]


def test_a_paused_member_gets_new_partitions_paused_and_gives_up_paused_ones_resumed():
    consumer, fake = fake_consumer(listener=RaisingListener())
    consumer._on_assign(fake, tps(0))
    consumer.pause(TopicPartition("t", 0))
    consumer._on_assign(fake, tps(1))  # while the member waits paused
    assert consumer.paused() == {TopicPartition("t", 0), TopicPartition("t", 1)}
    consumer._on_lost(fake, tps(0))
    assert ("resume", [0]) in fake.calls  # a pause outlives the assignment in librdkafka
    assert consumer.paused() == {TopicPartition("t", 1)}


def test_a_commit_answer_goes_to_the_callback_of_its_commit():
    consumer, fake = fake_consumer()
    answers = []
    first = {TopicPartition("t", 0): OffsetAndMetadata(5, "", -1)}
    second = {TopicPartition("t", 0): OffsetAndMetadata(8, "", -1)}
    consumer.commit_async(first, callback=lambda o, a: answers.append(("first", a)))
    consumer.commit_async(second, callback=lambda o, a: answers.append(("second", a)))
    consumer._on_commit(None, [CKTopicPartition("t", 0, 8)])
    refused = CKTopicPartition("t", 0, 5)
    consumer._on_commit(CKError(CKError.ILLEGAL_GENERATION), [refused])
    consumer._on_commit(None, [CKTopicPartition("t", 3, 1)])  # nobody's: ignored
    assert answers[0] == ("second", second)
    assert answers[1][0] == "first" and isinstance(answers[1][1], IllegalGenerationError)
    assert consumer._commits == []


def test_a_partition_error_in_a_commit_answer_fails_the_commit():
    consumer, _ = fake_consumer()
    answers = []
    consumer.commit_async({TopicPartition("t", 0): 5}, callback=lambda o, a: answers.append(a))
    failed = SimpleNamespace(topic="t", partition=0, offset=5)  # as librdkafka answers
    failed.error = CKError(CKError.REBALANCE_IN_PROGRESS)
    consumer._on_commit(None, [failed])
    assert len(answers) == 1 and isinstance(answers[0], KafkaError)


def test_a_commit_during_a_revoke_is_synchronous():
    class CommitsOnRevoke(RaisingListener):
        def on_partitions_revoked(self, revoked):
            consumer.commit_async({tp: 4 for tp in revoked})

    consumer, fake = fake_consumer()
    consumer._listener = CommitsOnRevoke()
    consumer._on_assign(fake, tps(2))
    consumer._on_revoke(fake, tps(2))
    assert ("commit", False, [(2, 4)]) in fake.calls


def test_a_commit_refused_at_once_raises_and_leaves_nothing_waiting():
    consumer, fake = fake_consumer()
    fake.commit_error = KafkaException(CKError(CKError._STATE))
    with pytest.raises(KafkaError):
        consumer.commit_async({TopicPartition("t", 0): 1}, callback=lambda o, a: None)
    assert consumer._commits == []


def test_a_client_wide_error_is_logged_once_per_interval(caplog):
    log = confluent.ErrorLog()
    for _ in range(5):
        log(CKError(CKError._TRANSPORT, "connect refused"))
    log(CKError(CKError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert [r.getMessage().split(":")[1].strip() for r in caplog.records] == [
        "_TRANSPORT",
        "_ALL_BROKERS_DOWN",
    ]


def test_librdkafka_logs_a_failing_reconnect_once_per_interval_and_client(caplog):
    """Against a closed port librdkafka retries the connection every ~50 ms and logs each
    failure; two clients for 1.5 s give one FAIL line each."""
    caplog.set_level(logging.DEBUG, logger="orderstream.kafka.librdkafka")
    address = f"127.0.0.1:{free_port()}"
    producers = [
        confluent.ConfluentProducer(bootstrap_servers=[address], client_id=name, api_version=(2, 5))
        for name in ("first", "second")
    ]
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        for producer in producers:
            producer.send("t", b"x")  # serves the log queue too
        time.sleep(0.05)
    for producer in producers:
        producer.close(timeout=0)
    failures = [r.args[1] for r in caplog.records if r.args and r.args[0] == "FAIL"]
    assert sorted(name.split("#")[0] for name in failures) == ["first", "second"]


def test_a_members_position_before_its_first_record_is_asked_of_the_broker_once():
    """The loop's lag stats ask every partition's position every second; a partition with
    no record consumed yet is asked of the broker (within the caller's timeout) once per
    assignment, then kept until a record or a seek moves it."""
    consumer, fake = fake_consumer()
    tp = TopicPartition("t", 0)
    consumer._on_assign(fake, [CKTopicPartition("t", 0)])
    assert consumer.position(tp, timeout_ms=0) is None  # only what is known: nothing yet
    assert [consumer.position(tp, timeout_ms=100) for _ in range(3)] == [7, 7, 7]
    assert fake.calls == [("committed", 0.1)]
    consumer.seek(tp, 9)
    assert consumer.position(tp, timeout_ms=100) == 9
    assert fake.calls[-1] == ("seek", 0, 9)
    consumer._on_revoke(fake, [CKTopicPartition("t", 0)])
    consumer._on_assign(fake, [CKTopicPartition("t", 0)])
    assert consumer.position(tp, timeout_ms=100) == 7
    assert fake.calls.count(("committed", 0.1)) == 2


# ------------------------------------------------------------------------------ the producer
def producer_without_broker() -> confluent.ConfluentProducer:
    """A confluent producer of an address nobody answers (built without the probe)."""
    conf, _ = confluent.producer_config({"bootstrap_servers": ["127.0.0.1:9"]})
    producer = confluent.ConfluentProducer.__new__(confluent.ConfluentProducer)
    producer._producer = confluent_kafka.Producer(conf)
    producer._partitions = {}
    return producer


def test_close_gives_up_undelivered_records_after_its_timeout():
    """librdkafka's own close waits for every record without bound; the driver's flushes
    for its timeout, then drops what is left (its deliveries fail)."""
    producer = producer_without_broker()
    delivery = producer.send("t", value=b"v", key=b"k")
    began = time.monotonic()
    producer.close(timeout=0.3)
    assert time.monotonic() - began < 5
    assert delivery.failed() and isinstance(delivery.exception, KafkaError)


def test_a_flush_with_records_left_raises_a_timeout_and_get_waits_no_longer_than_told():
    producer = producer_without_broker()
    delivery = producer.send("t", value=b"v")
    with pytest.raises(KafkaTimeoutError):
        producer.flush(timeout=0.2)
    with pytest.raises(KafkaTimeoutError):
        delivery.get(timeout=0.05)
    assert not delivery.succeeded() and not delivery.failed()
    producer.close(timeout=0)


# ------------------------------------------------------------------------------ with a broker
def read_values(consumer, count: int) -> list[bytes]:
    """The values of the next `count` records `consumer` polls (within 20 s)."""
    values: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(values) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=100).values():
            values += [record.value for record in records]
    return values


@pytest.mark.broker
def test_a_confluent_reader_placed_at_the_end_reads_what_comes_after(unique_topics, settings):
    settings.KAFKA_CLIENT = "confluent"
    topic = settings.ORDERS_ACK_TOPIC
    tp = TopicPartition(topic, 0)
    producer = clients.make_producer(client_id="test-reader")
    producer.send(topic, value=b"before", partition=0).get(timeout=10)
    reader = clients.make_consumer(group_id=None, client_id="test-reader")
    try:
        partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic)]
        reader.assign(partitions)
        reader.seek_to_end(*partitions)
        assert reader.position(tp) == 1 and reader.end_offsets([tp]) == {tp: 1}
        producer.send(topic, value=b"after", partition=0).get(timeout=10)
        assert read_values(reader, 1) == [b"after"]
        assert reader.position(tp) == 2 and reader.highwater(tp) == 2
        reader.seek(tp, 0)
        assert read_values(reader, 2) == [b"before", b"after"]
        assert reader.committed(tp) is None  # a reader never commits
    finally:
        reader.close()
        producer.close(timeout=5)


@pytest.mark.broker
def test_a_confluent_member_commits_and_its_answer_comes_to_the_commits_callback(
    unique_topics, settings
):
    settings.KAFKA_CLIENT = "confluent"
    topic = settings.ORDERS_EVENTS_TOPIC
    tp = TopicPartition(topic, 0)
    producer = clients.make_producer(client_id="test-member")
    for value in (b"a", b"b", b"c"):
        producer.send(topic, value=value, partition=0)
    producer.flush(timeout=10)
    producer.close(timeout=5)
    member = clients.make_consumer(group_id=settings.WORKER_GROUP, client_id="test-member")
    answers: list = []
    try:
        assert clients.subscribe_once_known(member, topic, RaisingListener())
        assert read_values(member, 3) == [b"a", b"b", b"c"]
        member.commit_async(
            {tp: OffsetAndMetadata(2, "", -1)}, callback=lambda o, a: answers.append(a)
        )
        deadline = time.monotonic() + 10
        while not answers and time.monotonic() < deadline:
            member.poll(timeout_ms=100)  # the answer is served by a poll
        assert answers == [{tp: OffsetAndMetadata(2, "", -1)}]
        member.commit({tp: 3})
        assert member.committed(tp) == 3
        member.pause(tp)
        assert member.paused() == {tp}
        member.resume(tp)
        assert member.paused() == set()
    finally:
        member.close()
