"""Subcommands of ``aiwarden``; each module adds its parser with ``register``."""
