#!/usr/bin/env python
"""`make mutation`: mutmut on the modules of pyproject's [tool.mutmut], then the scores.

Run through `scripts/local_stack.py mutation` (PostgreSQL, Redis and one broker for every
pytest run). Starts from a fresh `mutants/` unless `--keep` is given, runs `mutmut run`
and prints, per module, the mutants killed out of those that change behaviour: the
equivalent mutants listed in [tool.mutmut.equivalent] (name = reason) are left out, and
any survivor not listed there is printed with its diff (`mutmut show NAME`).

    python scripts/mutation.py [--keep] [--max-children N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
TARGET = 95.0  # percent of the non-equivalent mutants that the tests must kill
KILLED = {1, 3, 37}  # mutmut's exit codes of a killed mutant (37: caught by type check)


def equivalent_mutants() -> dict[str, str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["mutmut"].get("equivalent", {})


def mutant_results() -> dict[str, int | None]:
    """Every mutant's name and mutmut's exit code for it, from the `.meta` files."""
    results: dict[str, int | None] = {}
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        results.update(json.loads(meta.read_text())["exit_code_by_key"])
    return results


def module_of(name: str) -> str:
    return name.split(".x_")[0].split(".xǁ")[0]


def report(results: dict[str, int | None], equivalent: dict[str, str]) -> bool:
    """Print the scores; True when every module reaches TARGET."""
    by_module: dict[str, list[str]] = defaultdict(list)
    for name in results:
        by_module[module_of(name)].append(name)
    unknown = sorted(set(equivalent) - set(results))
    survivors: list[str] = []
    ok = True
    print(f"\n{'module':<32} {'killed':>7} {'of':>5} {'equivalent':>11} {'score':>7}")
    for module, names in sorted(by_module.items()):
        counted = [n for n in names if n not in equivalent]
        killed = [n for n in counted if results[n] in KILLED]
        survivors += [n for n in counted if results[n] not in KILLED]
        score = 100.0 * len(killed) / len(counted) if counted else 100.0
        ok &= score >= TARGET
        print(
            f"{module:<32} {len(killed):>7} {len(counted):>5} "
            f"{len(names) - len(counted):>11} {score:>6.1f}%"
        )
    for name in survivors:
        print(f"\nNOT KILLED ({results[name]}): {name}")
        subprocess.call([sys.executable, "-m", "mutmut", "show", name], cwd=ROOT)
    if unknown:
        ok = False
        print("\n[tool.mutmut.equivalent] names no mutant (renumbered?):", *unknown, sep="\n  ")
    return ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="reuse mutants/ and its results")
    parser.add_argument("--max-children", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.keep:
        shutil.rmtree(MUTANTS, ignore_errors=True)
    started = time.monotonic()
    code = subprocess.call(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)],
        cwd=ROOT,
    )
    print(f"\nmutmut run exited {code} after {time.monotonic() - started:.0f} s")
    if code:
        return code
    return 0 if report(mutant_results(), equivalent_mutants()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
