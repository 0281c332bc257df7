"""Intake (收件): how a department's file reaches the gateway and becomes one staged drop.

Holds the transports (local mailboxes, SFTP inboxes), staging (copying a settled file out of
the inbox before it is read), claims (one process takes one drop) and signed drops (a
department's detached signature checked before a file is taken).

May import: `gateway.readers`, `gateway.receipts`, `gateway.store`, the top-level modules
(config, clock, errors, masking, adapter, hookspecs, plugins). Must not import the exchange,
routing, the duties or the front ends: intake hands over a staged file, nothing more. What
it needs of a gateway is `transports.base.Mailboxes` (settings, `transport_for`)."""
