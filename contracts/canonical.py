"""Canonical JSON: sorted keys, no insignificant whitespace, UTF-8, no escaping of
non-ASCII text. The same content always gives the same bytes, so its SHA-256 can be
stored, compared and signed.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_SORT_KEYS = orjson.OPT_SORT_KEYS


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def canonical_json_without_floats(value: Any) -> bytes:
    """`canonical_json(value)`, byte for byte, by orjson, for a value that holds no float.

    For str, int, bool, None, lists and str-keyed dicts the two agree exactly: the same
    escapes (only `"`, `\\` and U+0000-U+001F, as \\n or \\u001f), raw UTF-8 for all other
    text including characters outside the BMP, keys sorted by code point.
    (tests/test_canonical.py checks every code point.) Floats are where they differ: orjson
    writes 1e-05 as 0.00001 and NaN as null, so callers must rule floats out. Whatever orjson
    refuses (integers wider than 64 bits, non-str keys, lone surrogates) goes to
    `canonical_json`, which then returns or raises exactly as before.
    """
    try:
        encoded = orjson.dumps(value, option=_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        return canonical_json(value)
    # orjson's bytes keep its whole output buffer (about 2 KB for a 500-byte record);
    # a pipeline holding a batch of payloads would carry that slack. One exact copy.
    return bytes(memoryview(encoded))
