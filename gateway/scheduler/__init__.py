"""Scheduled jobs inside `gateway run` (定时任务), on the `schedule` library.

Holds the runner: `Job`, leases (one run of each job on one process when several share a
database), `JobScheduler`, `PerThreadGateway`, and `gateway_jobs`, which learns the jobs
through the `register_jobs` hook. It knows no job by name: the built-in ones (inboxes,
pulls, assist checks in `gateway.platform.jobs`; `gateway.reconcile.job`;
`gateway.population_reports.job`) register like a plugin's.

May import: `gateway.exchange` and what is below it. Must not import the duties (platform,
reconcile, population reports, obligations), pulls or the front ends."""
