"""Ordinary outcomes in one log line, without a traceback.

A run whose records partly failed ends Failed on purpose (the runs list must show it), and
Prefect then treats the outcome as an exception: the flow engine logs "Engine execution exited
with unexpected exception" with a forty-line traceback, which reads like a crash. So does a
run refused because the integration is paused or another run of the module is going. These
are outcomes the operator acts on, not bugs: this filter turns such a record into the
outcome's own sentence (what happened and what to do), at the same level, with no traceback.
Any other exception keeps its traceback.
"""

from __future__ import annotations

import logging

from crmbooks.sync.lifecycle import RecordsFailed, RunRefused

#: Exceptions that are outcomes of a run, each with a message that says what to do.
ORDINARY = (RecordsFailed, RunRefused)
#: The loggers the flow and task engines write a run's exceptions to (the first two reach
#: the run's logs in the UI; the engine's goes to the worker's output).
ENGINE_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.engine")


class OneLineOutcomes(logging.Filter):
    """Rewrite a log record that carries an ordinary outcome to its one-line message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; strip the traceback of an ordinary outcome."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ORDINARY):
            record.msg, record.args = "%s", (str(exc),)
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install() -> None:
    """Add the filter to the engine loggers once (importing the flows calls this)."""
    for name in ENGINE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OneLineOutcomes) for f in logger.filters):
            logger.addFilter(OneLineOutcomes())
