"""Command groups of the `gateway` command that live outside `gateway/cli.py`:
`gateway ledger`, `gateway keys`, and `gateway receipts prove / verify-proof`."""
