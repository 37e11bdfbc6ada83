"""scripts/check_imports.py (`make lint`): the apps import each other nowhere, the core
imports no app; tests, testkit/ and migrations are exempt, names in strings are no import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testkit.processes import ROOT

CHECK = ROOT / "scripts/check_imports.py"


def tree(root: Path, files: dict[str, str]) -> Path:
    """The three packages under `root`, each with `__init__.py`, plus `files`."""
    for package in ("orderstream", "orders_api", "orders_worker"):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CHECK), str(root)], capture_output=True, text=True, timeout=60
    )


def test_each_cross_import_fails_with_one_line_naming_file_line_and_module(tmp_path):
    root = tree(
        tmp_path,
        {
            "orders_worker/handler.py": "import json\n\nfrom orders_api.models import Order\n",
            "orders_api/views.py": "import orders_worker.results as results\n",
            "orderstream/charset.py": "def f():\n    from orders_api import exceptions\n",
            "orderstream/kafka/loop.py": "from orders_worker.worker import OrderWorker\n",
        },
    )
    result = check(root)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "orders_api/views.py:1 imports orders_worker.results",
        "orders_worker/handler.py:3 imports orders_api.models",
        "orderstream/charset.py:2 imports orders_api",
        "orderstream/kafka/loop.py:1 imports orders_worker.worker",
    ]


def test_names_in_strings_tests_testkit_and_migrations_pass(tmp_path):
    root = tree(
        tmp_path,
        {
            "orderstream/settings/base.py": 'INSTALLED_APPS = ["orders_api", "orders_worker"]\n',
            "orderstream/urls.py": (
                'from django.urls import include\n\nurls = [include("orders_api.urls")]\n'
            ),
            "orders_api/views.py": "from orderstream.messages import OrderEvent\n",
            "orders_api/tests/test_x.py": "from orders_worker.models import ProcessedOrder\n",
            "orderstream/tests/test_y.py": "import orders_api.views\n",
            "orders_worker/migrations/0002_x.py": "import orders_api.models\n",
            "testkit/factories.py": "from orders_api.models import Order\n",
        },
    )
    result = check(root)
    assert (result.returncode, result.stdout) == (0, "")
