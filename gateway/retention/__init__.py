"""Retention (保存期限, issue 21, docs/operations.md "Retention"): how long records are kept
per contract (`[retention]` in gateway.toml; no rule, nothing is ever deleted), and the purge
that removes what is past its rule while every receipt and the ledger stay verifiable.

- `rules`: the `[retention]` table, validated (a period per contract: `10y`, `18m`, `400d`);
- `purge`: `gateway retention run [--dry-run]`: removes payloads, row errors and archived
  files past their rule, keeps each record's `record_hash`, leaf index and leaf hash, records
  every purge (`retentionpurge`) and an audit entry, drops the purged people from the register;
- `home`: the `Retention` that `gateway verify-home` asks (what was purged under which rule);
- `job`: the daily `retention` job of `gateway run`, scheduled only when rules exist.

May import: `gateway.register` (the register drops the purged people), `gateway.exchange`
(verify-home's `Retention` seam), `gateway.store`, `gateway.plugins` (the contracts a rule
may name) and the top-level modules; the scheduler's `Job` inside a function only, as the
other jobs do. Nothing below imports it; the front ends (cli) wire it."""
