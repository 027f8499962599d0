"""`python -m crmbooks.app.cli …` is `crmbooks …` (for subprocesses without the script)."""

from crmbooks.app.cli import run

if __name__ == "__main__":
    run()
