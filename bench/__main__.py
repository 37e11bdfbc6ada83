"""`python -m bench api|worker [OPTIONS]` (see bench/cli.py)."""

import sys

from bench.cli import main

sys.exit(main(sys.argv[1:]))
