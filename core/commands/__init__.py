"""Subcommands of the ``mricolor`` command line (one module each)."""
