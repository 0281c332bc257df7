"""Built-in adapters, one module per source. Each registers itself through the same
`register_adapters` hook a third-party plugin uses (see `gateway.plugins.DEFAULT_PLUGINS`)."""
