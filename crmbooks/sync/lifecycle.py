"""How a run ends when it does not simply complete: the errors every surface (CLI, flows, the
event receiver) recognises, with their exit codes documented in the README.

They live in the core so that the operator surfaces and the flows share one vocabulary without
importing each other. Each pickles and unpickles to an equal error: Prefect persists a failed
run's result, and the CLI and the receiver read it back.
"""

from __future__ import annotations


class RunRefused(RuntimeError):
    """No run starts: the integration is paused or disabled (exit code 3)."""


class RunInProgress(RunRefused):
    """Another run of the same module (and organization) is syncing: this one is refused."""


class RecordsFailed(Exception):
    """Some records of a run failed; carries the run summary (the run itself finished)."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary

    def __reduce__(self):
        # Exception pickles its args only; the summary is a second constructor argument.
        return (type(self), (str(self), self.summary))
