"""Command line: a thin table of subcommands over the library API."""
