"""The command line: one registry (``main``), one module per group of commands."""
