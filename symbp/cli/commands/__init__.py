"""Subcommands beyond the core ones: each module here has register(commands), called by symbp.cli.main."""
