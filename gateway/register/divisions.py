"""The county's divisions (区划): HOME/divisions.csv and the matching of addresses to villages.

The code lives in `gateway.routing.divisions` (routing, below the register, places a record's
person in a township for the township-scoped sharing agreements); the register imports it
from there. This module keeps the register's import path.
"""

from gateway.routing.divisions import (
    EXAMPLE,
    FILE_NAME,
    HEADERS,
    LEVELS,
    Division,
    Divisions,
    DivisionsError,
    Placement,
    load_divisions,
    parse_divisions,
    write_example,
)

__all__ = [
    "EXAMPLE",
    "FILE_NAME",
    "HEADERS",
    "LEVELS",
    "Division",
    "Divisions",
    "DivisionsError",
    "Placement",
    "load_divisions",
    "parse_divisions",
    "write_example",
]
