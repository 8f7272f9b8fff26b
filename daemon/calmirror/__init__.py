"""calmirror: a local CalDAV system calendar kept in step with Apple iCloud."""

__version__ = "0.1.0"
