"""The `gateway` command (命令行): `app` is the Typer application, `main` its entry point.

`app.py` holds the top-level commands (`gateway run`, `gateway demo`, ...); the other
modules hold one command group each (`gateway ledger`, `gateway keys`, `gateway receipts`,
`gateway routing`, `gateway users`, ...).

May import anything in `gateway`; nothing in `gateway` imports it."""

from gateway.cli.app import app, main

__all__ = ["app", "main"]
