"""One exception hierarchy. Every message says what went wrong, where, and what to do.

- `GatewayError`: fatal for the command that hit it (bad configuration, unknown name).
- `FileRejected`: one file cannot be read at all; it goes to `rejected/` with a report,
  and the gateway carries on with the next file.
- `TransportError`: a mailbox or partner could not be reached; retried on the next pass.
"""

from __future__ import annotations


class GatewayError(Exception):
    """A problem the operator must fix; the message says how."""


class ConfigError(GatewayError):
    """`gateway.toml` or a `GATEWAY_*` variable is wrong."""


class PluginError(GatewayError):
    """A plugin is broken or clashes with another (duplicate adapter name)."""


class UnknownName(GatewayError):
    """A name that is not one of the valid choices; the message lists them."""

    def __init__(self, kind: str, name: str, choices: list[str] | tuple[str, ...]):
        self.kind, self.name, self.choices = kind, name, list(choices)
        listed = ", ".join(sorted(self.choices)) or "(none)"
        super().__init__(f"Unknown {kind} {name!r}. Valid choices: {listed}")


class SigningError(GatewayError):
    """The gateway's signing key is missing or unusable."""


class FileRejected(Exception):
    """The whole file cannot be taken: wrong encoding, binary content, no header...

    `code` picks the bilingual reason shown to the clerk; `detail` adds specifics
    (never a personal value).
    """

    def __init__(self, code: str, detail: str = "", *, row: int | None = None, field: str = ""):
        self.code, self.detail, self.row, self.field = code, detail, row, field
        super().__init__(f"{code}: {detail}" if detail else code)


class TransportError(Exception):
    """A mailbox could not be read or written this pass; the next pass tries again."""
