"""Every exception class crmbooks defines pickles and unpickles to an equal error.

Prefect persists a failed run's result (its exception, pickled) and the CLI, the receiver and
a retried flow run read it back; an exception that cannot be rebuilt turns a clear refusal
into a crash of its own. The classes are found by walking the packages, so a new one without
a sample here fails `test_every_exception_class_has_a_sample`.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from datetime import UTC, datetime

import pytest

PACKAGES = ("crmbooks", "tasks", "flows", "deployments", "mappings", "emulators")
#: Modules that cannot be imported on their own (Alembic's environment script).
NOT_IMPORTABLE = {"crmbooks.store.migrations.env"}


def exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in our packages, by its dotted name."""
    found = {}
    for package in PACKAGES:
        root = importlib.import_module(package)
        names = [package, *(m.name for m in pkgutil.walk_packages(root.__path__, f"{package}."))]
        for name in names:
            if name in NOT_IMPORTABLE or ".migrations.versions" in name:
                continue
            try:
                module = importlib.import_module(name)
            except ImportError:  # an optional dependency (the screenshots' browser driver)
                continue
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == name:
                    found[f"{name}.{cls.__qualname__}"] = cls
    return found


def _run_lock():
    from crmbooks.store import RunLock

    return RunLock(org_id="20099001", module="customers", run_id="run-1", host="worker-1",
                   pid=4242, acquired_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


ZOHO = dict(endpoint="GET /crm/v8/Accounts", status=429, code="TOO_MANY_REQUESTS",
            body={"code": "TOO_MANY_REQUESTS"})
DETAILS = ("INVALID_DATA", "the value is wrong", {"api_name": "Website"})

#: How to make one of each class whose constructor is not a single message.
SAMPLES = {
    "crmbooks.app.receiver.debounce.Requeue": lambda c: c(["1", "2"], "a run is in progress"),
    "crmbooks.app.receiver.intake.Refused": lambda c: c(413, "the body is over 1 MB"),
    "crmbooks.connectors.errors.ZohoError": lambda c: c("refused", **ZOHO),
    "crmbooks.connectors.errors.AuthError": lambda c: c("refused", **ZOHO),
    "crmbooks.connectors.errors.FatalError": lambda c: c("refused", **ZOHO),
    "crmbooks.connectors.errors.RecordError": lambda c: c("refused", **ZOHO),
    "crmbooks.connectors.errors.RetriableError": lambda c: c("slow down", retry_after=1.5,
                                                             maybe_applied=True, **ZOHO),
    "crmbooks.store.errors.DatabaseTooNew": lambda c: c("0099_future"),
    "crmbooks.store.runs.RunLockHeld": lambda c: c(_run_lock()),
    "crmbooks.sync.lifecycle.RecordsFailed": lambda c: c("1 record(s) failed",
                                                         {"run_id": "run-1", "failed": 1}),
    "emulators.common.envelopes.ApiError": lambda c: c(429, {"code": 1}, {"Retry-After": "1"}),
    "emulators.crm.coql.CoqlError": lambda c: c(*DETAILS),
    "emulators.crm.criteria.CriteriaError": lambda c: c(*DETAILS),
    "emulators.crm.validate.ItemError": lambda c: c(*DETAILS),
    "emulators.crm.meta_routes._WatchError": lambda c: c({"code": "INVALID_DATA"}),
    "mappings.converters.ConversionError": lambda c: c("TOO_LONG", "too long", "shorten it"),
}

CLASSES = exception_classes()


def sample(name: str, cls: type[BaseException]) -> BaseException:
    return SAMPLES[name](cls) if name in SAMPLES else cls("what went wrong, and what to do")


def comparable(error: BaseException) -> tuple:
    """What makes two errors equal: class, message, arguments and attributes."""
    attributes = {k: (v.model_dump() if hasattr(v, "model_dump") else v)
                  for k, v in vars(error).items()}
    return type(error), str(error), error.args, attributes


def test_every_exception_class_has_a_sample():
    assert len(CLASSES) > 20
    for name, cls in CLASSES.items():
        sample(name, cls)  # a class needing more than a message must be listed in SAMPLES


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_an_exception_survives_pickling(name):
    error = sample(name, CLASSES[name])
    again = pickle.loads(pickle.dumps(error))
    assert comparable(again) == comparable(error)
