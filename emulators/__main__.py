"""`python -m emulators …` is `crmbooks emulators …` (handy for benchmarks' subprocesses)."""

import sys

from crmbooks.app.cli import app

if __name__ == "__main__":
    sys.argv = ["crmbooks", "emulators", *sys.argv[1:]]
    app()
