"""The population register (人口基础信息库) and the register of women of childbearing age
(育龄妇女信息库), with the county's townships and villages (乡镇/街道, 村/社区), docs/register.md.

- `divisions`: HOME/divisions.csv (12-digit 统计用区划代码, name, level), validated on load,
  and the matching of a record's address to a village (by code, then by names; never guessed);
- `settings`: which source is authoritative for which attribute (`[register.authority]`);
- `facts`: what one stored record says about each person it names (ID number as the key);
- `build`: folding stored records into the register, incrementally and idempotently, and
  rebuilding it from the stored records (same bytes);
- `women`: the 育龄妇女 roster (花名册) per township and village, CSV or XLSX;
- `lookup`: what the register answers an assist-check with (the platform's first source);

- `discrepancies`: where sources disagree, and a clerk's resolution;
- `lists`: the name lists of the regulations per township, delivered to `town-<code>` recipients;
- `job`: the daily `register-lists` job of `gateway run`.

May import: `gateway.store`, `gateway.routing` (the key check of a delivery),
the top-level modules (config, clock, errors, masking) and `contracts`; the exchange's `Gateway`
only as a type (`job` builds its scheduler `Job` inside the function, as the reconciliation's does). Must not import the other duties (platform, reconcile, population reports) or
the front ends: it reads stored records only, and `gateway.platform` reads it."""

from gateway.register.build import FoldResult, export_register, fold, rebuild
from gateway.register.divisions import Divisions, load_divisions

__all__ = ["Divisions", "FoldResult", "export_register", "fold", "load_divisions", "rebuild"]
