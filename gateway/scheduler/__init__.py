"""Scheduled jobs inside `gateway run` (定时任务), on the `schedule` library.

Holds the runner (leased jobs: inboxes, pulls, assist checks, reconciliation, population
reports), one run of each job on one process when several share a database.

May import everything below the front ends (the duties, pulls, exchange, intake, store).
Must not import `gateway.cli` or `gateway.web`."""
