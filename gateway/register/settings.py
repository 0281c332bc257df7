"""Register settings (`[population_register]` in gateway.toml): who is authoritative for what (一数一源),
and the ages of the 育龄妇女 register.

```toml
[population_register]
women_min_age = 15
women_max_age = 49
lists_due_day = 5                      # the name lists are due on this day of the month after their period
[population_register.authority]
marital_status = ["civil-affairs"]     # first source holding a value wins; the others are kept beside it
```
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.config import Settings, effective_departments
from gateway.errors import ConfigError

# The departments' duties: identity, household and address: police 户籍; marital status: civil
# affairs; births: hospital and police birth registration; residence: residence permits (police)
# and housing; school: school; death: police and cremation (civil affairs). `wcba` (the
# hand-imported 育龄妇女 table) is always the least authoritative, for what no feed holds.
DEFAULT_AUTHORITY: dict[str, tuple[str, ...]] = {
    "name": ("police",),
    "household_address": ("police",),
    "household_division": ("police",),
    "marital_status": ("civil-affairs",),
    "spouse": ("civil-affairs",),
    "child": ("hospital", "police"),
    "residence_address": ("police", "housing"),
    "residence_division": ("police", "housing"),
    "school": ("school",),
    "death_date": ("police", "civil-affairs"),
    "moved": ("police",),
}
ATTRIBUTES = tuple(DEFAULT_AUTHORITY)
WCBA = "wcba"

SOURCE_LABELS = {
    "police": "公安户籍", "hospital": "医院", "civil-affairs": "民政", "school": "教育",
    "housing": "房管", "national-platform": "全国流动人口平台", WCBA: "育龄妇女台账",
}


@dataclass(frozen=True)
class RegisterSettings:
    authority: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_AUTHORITY))
    women_min_age: int = 15
    women_max_age: int = 49
    lists_due_day: int = 5

    def ranked(self, attribute: str, sources: set[str]) -> list[str]:
        """The sources holding `attribute`, most authoritative first: the configured ones in
        their order, then any other feed (alphabetically), the hand import last."""
        first = [s for s in self.authority.get(attribute, ()) if s in sources]
        rest = sorted(s for s in sources if s not in first and s != WCBA)
        return first + rest + ([WCBA] if WCBA in sources and WCBA not in first else [])


def register_settings(settings: Settings) -> RegisterSettings:
    raw = dict(settings.population_register or {})
    authority = dict(DEFAULT_AUTHORITY)
    given = raw.pop("authority", {}) or {}
    if not isinstance(given, dict):
        raise ConfigError("[population_register.authority] must be a table: attribute = [\"department\", ...]")
    departments: list[str] | None = None
    for attribute, sources in given.items():
        if attribute not in DEFAULT_AUTHORITY:
            raise ConfigError(f"[population_register.authority] {attribute!r} is not an attribute. Valid choices: {', '.join(ATTRIBUTES)}")
        if isinstance(sources, str):
            sources = [sources]
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise ConfigError(f"[population_register.authority] {attribute}: write a list of department names")
        if departments is None:  # a department an installed adapter reads is a source too
            from gateway.plugins import get_manager

            departments = effective_departments(settings, get_manager().adapters().values())
        unknown = [s for s in sources if s not in departments and s != WCBA]
        if unknown:
            raise ConfigError(
                f"[population_register.authority] {attribute}: {', '.join(unknown)} is not a department. "
                f"Valid choices: {', '.join([*departments, WCBA])}"
            )
        authority[attribute] = tuple(sources)
    low, high = raw.pop("women_min_age", 15), raw.pop("women_max_age", 49)
    if not (isinstance(low, int) and isinstance(high, int) and 0 < low <= high < 100):
        raise ConfigError("[population_register] women_min_age and women_max_age: whole years, min <= max (default 15 and 49)")
    due_day = raw.pop("lists_due_day", 5)
    if not (isinstance(due_day, int) and 1 <= due_day <= 28):
        raise ConfigError("[population_register] lists_due_day: the day of the month after the period (1-28, default 5)")
    if raw:
        raise ConfigError(
            f"[population_register] unknown option(s): {', '.join(sorted(raw))}. Valid: authority, women_min_age, women_max_age, lists_due_day"
        )
    return RegisterSettings(authority, low, high, due_day)
