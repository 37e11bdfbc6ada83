"""LOG_FORMAT: the JSON formatter, the fields of a line about one order, the settings' and
the API server's choice of format. (The processes' real output: test_json_logs.py.)"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from orderstream import api_server
from orderstream.log_format import (
    JsonFormatter,
    log_fields,
    log_format_from,
    logger_levels_from,
)
from testkit.processes import ROOT, random_secret_key


def make_record(message: str, *args, level=logging.INFO, exc_info=None, **extra):
    return logging.getLogger("orders_worker.handler").makeRecord(
        "orders_worker.handler", level, __file__, 1, message, args, exc_info, extra=extra
    )


def test_a_record_becomes_one_json_object_with_the_fixed_fields_and_its_extras():
    order_id = uuid.uuid4()
    record = make_record(
        "rejected message %s[%d]@%d: %s",
        "orders.events",
        3,
        41,
        "сумма неверна",
        level=30,
        **log_fields(
            order_id=order_id,
            event_id="e-1",
            record=SimpleNamespace(topic="orders.events", partition=3, offset=41),
        ),
    )
    line = JsonFormatter().format(record)

    assert "\n" not in line
    fields = json.loads(line)
    assert list(fields)[:5] == ["time", "level", "logger", "pid", "message"]
    assert fields["level"] == "WARNING"
    assert fields["logger"] == "orders_worker.handler"
    assert fields["pid"] == os.getpid()
    assert fields["message"] == "rejected message orders.events[3]@41: сумма неверна"
    assert "сумма" in line  # UTF-8, not \u escapes
    assert fields["order_id"] == str(order_id)
    assert (fields["event_id"], fields["topic"], fields["partition"], fields["offset"]) == (
        "e-1",
        "orders.events",
        3,
        41,
    )
    logged_at = datetime.fromisoformat(fields["time"])
    assert fields["time"].endswith("Z") and logged_at.tzinfo is not None
    assert abs(logged_at - datetime.fromtimestamp(record.created, UTC)).total_seconds() < 0.001


def test_a_traceback_stays_inside_the_one_line():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = make_record("failed", level=logging.ERROR, exc_info=sys.exc_info())
    line = JsonFormatter().format(record)
    assert line.count("\n") == 0
    fields = json.loads(line)
    assert fields["message"] == "failed"
    assert "RuntimeError: boom" in fields["exc_info"]
    assert "Traceback" in fields["exc_info"]


def test_log_fields_keep_what_is_known():
    assert log_fields() == {}
    assert log_fields(order_id="o-1") == {"order_id": "o-1"}
    record = SimpleNamespace(topic="t", partition=0, offset=0)
    assert log_fields(event_id="e", record=record) == {
        "event_id": "e",
        "topic": "t",
        "partition": 0,
        "offset": 0,
    }


@pytest.mark.parametrize(
    ("value", "chosen"), [(None, "text"), ("", "text"), ("text", "text"), (" JSON ", "json")]
)
def test_log_format_defaults_to_text(value, chosen):
    assert log_format_from(value) == chosen


def test_an_unknown_log_format_is_refused_naming_the_variable():
    with pytest.raises(ValueError, match="LOG_FORMAT must be one of text, json, not 'jsno'"):
        log_format_from("jsno")


@pytest.mark.parametrize(
    ("value", "levels"),
    [
        (None, {}),
        ("", {}),
        ("kafka.coordinator=debug", {"kafka.coordinator": "DEBUG"}),
        (
            " kafka = INFO , orders_api.relay=WARNING,",
            {"kafka": "INFO", "orders_api.relay": "WARNING"},
        ),
    ],
)
def test_log_levels_name_loggers_and_their_levels(value, levels):
    assert logger_levels_from(value) == levels


@pytest.mark.parametrize("value", ["kafka", "kafka=LOUD", "=DEBUG", "kafka=DEBUG,relay"])
def test_a_malformed_log_levels_item_is_refused_naming_it(value):
    with pytest.raises(ValueError, match="LOG_LEVELS items are logger=LEVEL"):
        logger_levels_from(value)


def settings_process(code: str, **env: str) -> subprocess.CompletedProcess:
    """`code` run after django.setup() with the production settings and `env`."""
    return subprocess.run(
        [sys.executable, "-c", f"import django, logging\ndjango.setup()\n{code}"],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DJANGO_SETTINGS_MODULE": "orderstream.settings.production",
            "DJANGO_SECRET_KEY": random_secret_key(),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_settings_log_json_lines_when_log_format_is_json():
    code = (
        "logging.getLogger('orders_api.relay.publish')"
        ".warning('parked %s', 'x', extra={'order_id': 'o'})"
    )
    as_json = settings_process(code, LOG_FORMAT="json")
    assert as_json.returncode == 0, as_json.stderr
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]  # each one JSON
    fields = lines[-1]
    assert (fields["logger"], fields["level"], fields["message"], fields["order_id"]) == (
        "orders_api.relay.publish",
        "WARNING",
        "parked x",
        "o",
    )
    as_text = settings_process(code)
    assert as_text.returncode == 0, as_text.stderr
    line = as_text.stdout.strip().splitlines()[-1]
    assert " WARNING " in line and line.endswith(" orders_api.relay.publish: parked x"), line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_the_settings_refuse_an_unknown_log_format():
    result = settings_process("pass", LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be one of text, json" in result.stderr


SERVER_LINES = """
import logging, sys, time
from granian.log import LogLevels, configure_logging, log_request_builder
from orderstream.api_server import ACCESS_LOG_FORMAT
from orderstream.log_format import logging_dict
configure_logging(LogLevels.info, logging_dict(sys.argv[1]))
logging.getLogger("_granian").error("worker-%s died", 2)
request = {"addr_remote": "127.0.0.1", "path": "/orders", "qs": "", "method": "POST",
           "scheme": "http", "protocol": "HTTP/1.1"}
log_request_builder(ACCESS_LOG_FORMAT)(time.time(), time.perf_counter(), request, 201)
"""


def server_lines(log_format: str) -> list[str]:
    """What granian writes, configured as orderstream/api_server.py configures it: one of
    its own lines and one access line."""
    result = subprocess.run(
        [sys.executable, "-c", SERVER_LINES, log_format],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_api_servers_own_and_access_lines_are_json_with_log_format_json():
    own, access = (json.loads(line) for line in server_lines("json"))
    assert (own["logger"], own["level"], own["message"]) == ("_granian", "ERROR", "worker-2 died")
    assert access["logger"] == "granian.access"
    assert '"POST /orders HTTP/1.1" 201' in access["message"]


def test_the_api_servers_lines_are_text_by_default():
    own, access = server_lines("text")
    assert " ERROR " in own and own.endswith(" _granian: worker-2 died")
    assert 'granian.access: 127.0.0.1 "POST /orders HTTP/1.1" 201' in access


def test_the_api_servers_access_log_stays_off_unless_asked(monkeypatch):
    """LOG_FORMAT=json changes the format, not what is logged: no access lines (and no
    per-request cost) while API_ACCESS_LOG is off."""
    monkeypatch.delenv("API_ACCESS_LOG", raising=False)
    assert api_server.server().log_access is False
    monkeypatch.setenv("API_ACCESS_LOG", "1")
    assert api_server.server().log_access is True


def test_log_fields_write_ids_as_text():
    order_id = uuid.uuid4()
    assert log_fields(order_id=order_id, event_id=order_id) == {
        "order_id": str(order_id),
        "event_id": str(order_id),
    }


def test_python_warnings_are_logged_in_the_format():
    code = "import warnings\nwarnings.warn('No directory at: /app/staticfiles/')"
    result = settings_process(code, LOG_FORMAT="json")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    fields = json.loads(result.stdout.splitlines()[-1])
    assert (fields["logger"], fields["level"]) == ("py.warnings", "WARNING")
    assert "UserWarning: No directory at: /app/staticfiles/" in fields["message"]


def test_the_settings_give_loggers_the_levels_log_levels_names():
    code = "print('levels', *(logging.getLogger(n).level for n in ('kafka.coordinator', 'kafka')))"

    def levels(**env: str) -> list[str]:
        shown = settings_process(code, **env)
        return [
            line.split()[1:] for line in shown.stdout.splitlines() if line.startswith("levels ")
        ]

    assert levels() == [["0", "30"]]  # unset, and kafka's WARNING
    assert levels(LOG_LEVELS="kafka.coordinator=DEBUG") == [["10", "30"]]
