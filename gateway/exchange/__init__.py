"""The exchange (交换): one staged file through parsing, validation, storing and its receipt.

Holds the lifecycle (`ExchangePipeline`: a drop from inbox to `processed/` or `rejected/`),
row batches (validate and store in bounded batches), parallel parsing (one large file on
several cores), the gateway home's layout, and its backup, restore and completeness check
(`backup.py`, `restore.py`, `home_check.py`).

May import: `gateway.routing`, `gateway.services`, `gateway.intake`, `gateway.readers`,
`gateway.receipts`, `gateway.store` and the top-level modules. Must not import the
scheduler, pulls, the duties (platform, obligations, reconcile, population reports) or the
front ends: what they need of a gateway is `gateway.services.GatewayServices`."""
