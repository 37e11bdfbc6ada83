"""`python manage.py test` runs the pytest suite, so there is one suite and one runner.

pytest runs in a child process with the test settings: the parent process has already
configured Django with whatever settings `manage.py` was started with.
"""

import os
import subprocess
import sys


class PytestTestRunner:
    """A Django TEST_RUNNER that hands the labels (paths or node ids) to pytest."""

    def __init__(self, verbosity=1, failfast=False, keepdb=False, **kwargs):
        self.verbosity = verbosity
        self.failfast = failfast
        self.keepdb = keepdb

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--keepdb", action="store_true", help="Reuse the test databases.")

    def run_tests(self, test_labels, **kwargs):
        argv = [sys.executable, "-m", "pytest", *test_labels]
        argv.append("--reuse-db" if self.keepdb else "--create-db")
        if self.failfast:
            argv.append("--exitfirst")
        if self.verbosity == 0:
            argv.append("--quiet")
        elif self.verbosity > 1:
            argv.append("--verbose")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "orderstream.settings.test"}
        return subprocess.call(argv, env=env)
