"""The `calmirror` command line."""
