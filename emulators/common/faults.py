"""Injected faults: which requests fail, and how, drawn from a seeded random stream."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, fields
from typing import Any


@dataclass
class Faults:
    """Injected faults, reproducible from `seed`. All rates are probabilities per API request."""

    error_rate: float = 0.0  # 5xx answers (product envelope)
    rate_429: float = 0.0  # 429 answers with Retry-After
    drop_rate: float = 0.0  # connection closed without a complete answer
    latency_ms: int = 0  # added to every API request
    expire_tokens_after: int | None = None  # an access token stops working after N requests
    search_lag_s: float = 0.0  # CRM search does not see records written this recently
    seed: int = 0

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Faults:
        """Build from the control endpoint's JSON; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        return cls(**raw)

    @classmethod
    def parse_spec(cls, spec: str) -> Faults:
        """Parse the command-line form `error_rate=0.1,rate_429=0.05,latency_ms=50`."""
        raw: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"fault '{part}' needs the form name=value")
            raw[key.strip()] = float(value) if "." in value else int(value)
        return cls.from_dict(raw)


class FaultDice:
    """The current faults and the seeded random stream that decides which request they hit."""

    def __init__(self):
        self.faults = Faults()
        self._rng = random.Random(0)
        self._lock = threading.Lock()

    def set(self, faults: Faults) -> None:
        """Replace the injected faults; their random stream restarts from `faults.seed`."""
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)

    def draw(self) -> str | None:
        """Which fault (if any) hits the next API request: "error", "429", "drop-before"
        (the request is lost), "drop-after" (the answer is lost after the request was
        applied) or None."""
        with self._lock:
            f, roll = self.faults, self._rng.random()
            for name, rate in (("error", f.error_rate), ("429", f.rate_429),
                               ("drop", f.drop_rate)):
                if roll < rate:
                    if name == "drop":
                        # Half the drops lose the request, half lose the answer after the
                        # write was applied: the case that tests exactly-once writes.
                        return "drop-before" if self._rng.random() < 0.5 else "drop-after"
                    return name
                roll -= rate
        return None
