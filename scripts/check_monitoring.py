"""Check the compose stack's monitoring files without running Prometheus or Grafana.

    python scripts/check_monitoring.py            # what `make compose-lint` runs

- `promtool check config` on compose/prometheus/prometheus.yml;
- every PromQL expression of the Grafana dashboards (compose/grafana/dashboards/*.json),
  with Grafana's interval variables replaced by durations, written into a temporary rules
  file and checked with `promtool check rules` (a syntax error names its panel);
- every metric name those expressions use is one of compose/prometheus/metric_names.txt
  (the names the code defines: orderstream/tests/test_monitoring.py holds the code to it).

promtool comes with Debian's `prometheus` package (`apt-get install prometheus`; .ci/run
installs it). Without it the promtool steps are skipped with a message saying so, unless
CI_REQUIRE_PROMTOOL=1 (or --require-promtool), which makes that a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_CONFIG = ROOT / "compose/prometheus/prometheus.yml"
DASHBOARDS = ROOT / "compose/grafana/dashboards"
METRIC_NAMES = ROOT / "compose/prometheus/metric_names.txt"
INSTALL_HINT = "install Debian's prometheus package (apt-get install prometheus) for promtool"
# Grafana's variables that stand for a duration, and what stands in for them here.
GRAFANA_DURATIONS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
# The series a histogram's base name brings.
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMQL_KEYWORDS = {
    *("by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"),
    *("and", "or", "unless", "inf", "nan", "start", "end"),
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(\s*\()?")


def metric_names_allowed(path: Path = METRIC_NAMES) -> set[str]:
    """The names of metric_names.txt (comments and blank lines skipped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


def dashboard_expressions(path: Path) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of the dashboard, rows' panels included."""
    found = []

    def walk(panels: list) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((panel.get("title", "?"), target["expr"]))
            walk(panel.get("panels", []))

    walk(json.loads(path.read_text())["panels"])
    return found


def as_promql(expression: str) -> str:
    """A Grafana expression as plain PromQL: its interval variables replaced by durations."""
    for variable, duration in GRAFANA_DURATIONS.items():
        expression = expression.replace(variable, duration)
    return expression


def promql_metric_names(expression: str) -> set[str]:
    """The metric names an expression selects (not its functions, keywords or labels)."""
    text = _STRING.sub('""', as_promql(expression))
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = _GROUPING.sub("", text)  # by (...), on (...) and the like: label names
    return {
        name
        for name, call in _IDENTIFIER.findall(text)
        if not call and name.lower() not in PROMQL_KEYWORDS
    }


def unknown_names(names: set[str], allowed: set[str]) -> set[str]:
    """`names` that are neither allowed nor a series of an allowed histogram."""

    def known(name: str) -> bool:
        if name in allowed:
            return True
        return any(name.endswith(s) and name[: -len(s)] in allowed for s in HISTOGRAM_SUFFIXES)

    return {name for name in names if not known(name)}


def rules_file_text(expressions: list[tuple[str, str]]) -> str:
    """A Prometheus rules file with one recording rule per expression (for promtool)."""
    rules = [
        {"record": f"dashboard:expression_{number}", "expr": as_promql(expression)}
        for number, (_, expression) in enumerate(expressions, 1)
    ]
    return json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}, indent=2)


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=60, check=False
    )


def check(config: Path, dashboards: list[Path], names: Path, require_promtool: bool) -> list[str]:
    """Run every check; return the problems found (empty: all good)."""
    problems = []
    allowed = metric_names_allowed(names)
    expressions = []
    for dashboard in dashboards:
        for title, expression in dashboard_expressions(dashboard):
            expressions.append((f"{dashboard.name}: {title}", expression))
            for name in sorted(unknown_names(promql_metric_names(expression), allowed)):
                problems.append(
                    f"{dashboard.name}: panel {title!r} uses {name}, not in {names.name}"
                )
    print(f"metric names: {len(expressions)} expression(s) of {len(dashboards)} dashboard(s)")

    if shutil.which("promtool") is None:
        message = f"promtool not found: config and PromQL checks skipped; {INSTALL_HINT}"
        if require_promtool:
            return [*problems, message]
        print(f"SKIPPED: {message}")
        return problems
    result = promtool("check", "config", str(config))
    print(result.stdout.strip())
    if result.returncode != 0:
        problems.append(f"promtool check config {config.name}: {result.stderr.strip()}")
    with tempfile.TemporaryDirectory() as scratch:
        rules = Path(scratch) / "dashboard-expressions.rules.yml"
        rules.write_text(rules_file_text(expressions))
        result = promtool("check", "rules", str(rules))
    if result.returncode != 0:
        problems.append(
            f"PromQL of the dashboards: {result.stdout.strip()} {result.stderr.strip()}"
        )
        for number, (where, expression) in enumerate(expressions, 1):
            if f'"dashboard:expression_{number}"' in result.stdout + result.stderr:
                problems.append(f"  {where}: {expression}")
    else:
        print(f"PromQL: {len(expressions)} expression(s) parse (promtool check rules)")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus-config", type=Path, default=PROMETHEUS_CONFIG)
    parser.add_argument(
        "--dashboard", type=Path, action="append", help="a dashboard JSON (default: all)"
    )
    parser.add_argument("--metric-names", type=Path, default=METRIC_NAMES)
    parser.add_argument(
        "--require-promtool",
        action="store_true",
        default=os.environ.get("CI_REQUIRE_PROMTOOL") == "1",
        help="fail rather than skip without promtool (default: CI_REQUIRE_PROMTOOL=1)",
    )
    args = parser.parse_args(argv)
    dashboards = args.dashboard or sorted(DASHBOARDS.glob("*.json"))
    problems = check(args.prometheus_config, dashboards, args.metric_names, args.require_promtool)
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
