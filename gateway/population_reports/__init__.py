"""Population reports (人口变动统计报表) and the monthly early warning (预警), docs/reports.md.

- `periods`: statistical periods (21st to 20th) and due dates;
- `events`: what each stored record counts as, when and where;
- `snapshots`: the registered population at given dates (HOME/population_snapshots.csv);
- `figures`: one report's tables, the township breakdown (分乡镇) read from the register
  (`gateway.register.township_report`); `balance`: the statistics office's balance checks;
- `tables`, `writers`, `html_page`, `charts`: XLSX, CSV, HTML with inline SVG, JSON summary;
- `warning`: the monthly early warning; `scheduled`: production on the due dates into the
  population office's outbox, signed; `job`: the `population-reports` job (`register_jobs`).

May import: `gateway.reconcile`, `gateway.register`, `gateway.obligations`, `gateway.scheduler` and everything
below. Must not import the platform or the front ends.
"""

from __future__ import annotations

from gateway.population_reports.periods import KINDS, Period, period

__all__ = ["KINDS", "Period", "period"]
