"""Combine the coverage data of `make test` (every process it measured), print the table,
and with `--floor` fail when lines or branches are below their floor.

The floors hold for the whole suite on one broker; a run of some tests only
(`make test PYTEST_ARGS=...`) prints the table without judging it. What is measured and
what is left out is in `.coveragerc`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from coverage import Coverage

LINES_FLOOR = 90.0
BRANCHES_FLOOR = 85.0


def percent(covered: int, total: int) -> float:
    return 100.0 * covered / total if total else 100.0


def main(argv: list[str]) -> int:
    coverage = Coverage()
    coverage.combine()
    coverage.save()
    coverage.report(skip_covered=True)
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "coverage.json"
        coverage.json_report(outfile=str(report))
        totals = json.loads(report.read_text())["totals"]
    lines = percent(totals["covered_lines"], totals["num_statements"])
    branches = percent(totals["covered_branches"], totals["num_branches"])
    print(
        f"\ncoverage: lines {lines:.1f} % (floor {LINES_FLOOR}), "
        f"branches {branches:.1f} % (floor {BRANCHES_FLOOR})"
    )
    if "--floor" not in argv:
        return 0
    if lines < LINES_FLOOR or branches < BRANCHES_FLOOR:
        print("coverage is below its floor", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
