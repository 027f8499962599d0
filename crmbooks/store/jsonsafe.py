"""Turn record values into JSON-safe data for the store's JSON columns."""

from __future__ import annotations

import contextlib
import math
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

#: Keys whose values never reach the store, a log or an artifact: secrets stay at the edge.
SECRET_KEY = re.compile(r"secret|token|password|passwd|authorization|api[_-]?key", re.I)


def json_safe(value: Any) -> Any:
    """Return ``value`` as plain JSON data: Decimal → str (never float), dates → ISO, NaN → None.

    numpy scalars are unwrapped first, so pandas cells can be passed in directly.
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes, dict, list)):
        with contextlib.suppress(TypeError, ValueError):
            value = value.item()  # numpy scalar → python scalar
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def scrub(value: Any) -> Any:
    """Return a JSON-safe copy of ``value`` with secret-looking keys masked as ``***``."""
    if isinstance(value, dict):
        return {
            str(k): ("***" if SECRET_KEY.search(str(k)) else scrub(v)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return json_safe(value)
