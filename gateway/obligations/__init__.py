"""Obligations (义务与法定时限): every duty the regulations set, with its due day on the
Chinese working-day calendar.

- `deadlines`: the deadline rules (calendar or working days, `chinesecalendar`, the
  statutory holidays of years it does not know yet) that everything with a due day uses;
- `service`: the obligations themselves (open, fulfil, waive, list, rates) and the
  departments' submission schedules;
- `hooks`: the thin functions routing, acknowledgements, the exchange, the platform's notices,
  the register's fold and the reconciliation run call (sign-off, submission, update, feedback-check,
  forward, reconcile-evidence);
- `platform_mirror`: the national platform's assist-checks and notices as obligations;
- the hourly `obligations` job and the Friday reminders live in `gateway.reminders`, above
  routing (they send), while this package sits below routing and the exchange (they call `hooks`).

May import: `gateway.store`, `contracts` (the ID-number check) and the top-level modules (config, clock, errors). Nothing
above it (`job` imports the scheduler only when `gateway run` builds it, as the
reconciliation job does): every duty reads its due dates from here."""
