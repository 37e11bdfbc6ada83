"""The image's build context (compose/Dockerfile: `COPY . .`) as .dockerignore leaves it:
what the image runs is in it; tests, their support, benchmarks, the local stack's tooling,
scripts, docs and local state are not.

The context is the repository's files (`git ls-files`) filtered with Docker's rules, as
moby's patternmatcher applies them to the patterns .dockerignore uses: each pattern is
anchored at the context's root, `*` and `?` stay within one path segment, `**` spans any
number of segments, a pattern that matches a folder leaves out all below it, `!` takes a
path back in, and the last line that matches decides.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from testkit.compose import START_SCRIPTS, dockerfile_instructions
from testkit.processes import ROOT

# What no build needs, by its first path segment (tests: any folder of that name).
LEFT_OUT = ("testkit", "bench", "devstack", "scripts", "docs", ".git", ".venv", ".local")
# Local state that is not in git but may sit in a checkout.
LOCAL_STATE = [
    ".venv/bin/python",
    ".local/postgres/PG_VERSION",
    ".git/HEAD",
    ".env",
    ".env.production",
    "bench-results/tansu/api.json",
    "orders_api/__pycache__/views.cpython-311.pyc",
    ".pytest_cache/v/cache/nodeids",
    ".hypothesis/examples/x",
    "staticfiles/admin/css/base.css",
    "mutants/orders_worker/rules.py",
    ".coverage.host.1234",
    "relay.log",
]


def docker_regex(pattern: str) -> re.Pattern:
    """moby's patternmatcher: `**/` any folders (none too), `**` at the end anything,
    `*` and `?` within one segment."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i == len(pattern) else "(.*/)?"
            continue
        char = pattern[i]
        out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
        i += 1
    return re.compile(out)


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern]]:
    """(excludes, regex) per line of a .dockerignore, comments and blanks skipped."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((excludes, docker_regex(pattern)))
    return rules


def excluded(path: str, rules) -> bool:
    """Whether Docker leaves `path` out: the last rule matching it or a folder above it."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for excludes, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            result = excludes
    return result


@pytest.fixture(scope="module")
def context() -> set[str]:
    rules = dockerignore_rules((ROOT / ".dockerignore").read_text())
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
    ).stdout.decode()
    return {path for path in files.split("\0") if path and not excluded(path, rules)}


@pytest.mark.parametrize(
    ("lines", "path", "left_out"),
    [
        ("**/tests", "orders_api/tests/test_views.py", True),
        ("**/tests", "tests/conftest.py", True),
        ("**/tests", "orders_api/tests.py", False),
        ("docs", "docs/contract.md", True),
        ("docs", "orderstream/docs/x.py", False),
        ("*.log", "relay.log", True),
        ("*.log", "logs/relay.log", False),
        ("compose/*\n!compose/*.sh", "compose/start-api.sh", False),
        ("compose/*\n!compose/*.sh", "compose/Dockerfile", True),
    ],
)
def test_the_rules_are_dockers(lines, path, left_out):
    assert excluded(path, dockerignore_rules(lines)) is left_out


def test_no_tests_and_no_development_tooling_go_into_the_image(context):
    wrong = sorted(
        path
        for path in context
        if "tests" in path.split("/")[:-1] or path.split("/")[0] in LEFT_OUT
    )
    assert not wrong, f"in the build context: {wrong}"
    rules = dockerignore_rules((ROOT / ".dockerignore").read_text())
    assert all(excluded(path, rules) for path in LOCAL_STATE)


def test_everything_the_image_uses_is_in_the_context(context):
    needed = {
        "manage.py",
        "compose/prestart.py",
        "requirements/base.txt",
        "requirements/production.txt",
        *(str(script.relative_to(ROOT)) for script in START_SCRIPTS.values()),
    }
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY":
            *sources, _ = arguments.split()
            needed |= {source.rstrip("/") for source in sources if source != "."}
    tracked = subprocess.run(
        ["git", "ls-files", "orderstream", "orders_api", "orders_worker"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    needed |= {path for path in tracked if "tests" not in path.split("/")[:-1]}
    missing = sorted(
        path
        for path in needed
        if path not in context and not any(other.startswith(path + "/") for other in context)
    )
    assert not missing, f"the image needs, but .dockerignore leaves out: {missing}"
