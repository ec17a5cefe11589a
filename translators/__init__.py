"""Pure translators between the client dialects, the upstream dialects and the IR (no I/O)."""
