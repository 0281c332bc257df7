"""Canonical JSON: sorted keys, no insignificant whitespace, UTF-8, no escaping of
non-ASCII text. The same content always gives the same bytes, so its SHA-256 can be
stored, compared and signed.
"""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
