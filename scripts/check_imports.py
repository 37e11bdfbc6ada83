"""The import rule of the project's packages (`make lint`): neither app imports the other,
and the core (`orderstream`) imports no app.

Usage: check_imports.py [ROOT]   (ROOT: the repository, by default this script's parent)

Prints one line per offence, `file:line imports module`, and exits 1 when there is one.
Only import statements count: settings and URLs that name an app in a string
(INSTALLED_APPS, `include("orders_api.urls")`) are Django's wiring, not imports. Exempt:
files under a `tests/` folder, `testkit/` (test support, outside the three packages) and
migrations (Django writes their cross-app dependencies itself).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

# Package -> the top-level packages its modules must not import.
FORBIDDEN = {
    "orders_api": {"orders_worker"},
    "orders_worker": {"orders_api"},
    "orderstream": {"orders_api", "orders_worker"},
}
EXEMPT_FOLDERS = {"tests", "migrations"}


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in `tree`, top-level or inside a function."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def offences(root: Path) -> Iterator[str]:
    for package, forbidden in sorted(FORBIDDEN.items()):
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            if EXEMPT_FOLDERS & set(relative.parts[:-1]):
                continue
            tree = ast.parse(path.read_bytes(), filename=str(relative))
            for line, module in sorted(imported_modules(tree)):
                if module.split(".")[0] in forbidden:
                    yield f"{relative}:{line} imports {module}"


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent
    found = list(offences(root))
    for offence in found:
        print(offence)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
