"""Rehearsal and development tools (演练工具): the demo, the partner simulator, a generated
sample month and the adapter scaffold.

Nothing here runs in production. May import anything below the front ends; only
`gateway.cli` and the tests import it."""
