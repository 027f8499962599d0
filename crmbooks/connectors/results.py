"""`WriteResult`: the outcome of writing one record, success or the provider's rejection."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WriteResult:
    """One record's outcome. `index` is its position in the input list; on failure `code`,
    `field` (the offending API name) and `message` are Zoho's, ready for a failures row."""

    index: int
    ok: bool
    id: str | None = None
    action: str | None = None  # "insert" | "update" | "delete" | a status action name
    code: str | int | None = None
    field: str | None = None
    message: str = ""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    record: dict[str, Any] | None = None  # Books: the object Zoho returned

    def describe(self) -> str:
        """'record 3: DUPLICATE_DATA on Email — duplicate data' for logs and artifacts."""
        if self.ok:
            return f"record {self.index}: {self.action} {self.id}"
        where = f" on {self.field}" if self.field else ""
        return f"record {self.index}: {self.code}{where} — {self.message}"
