"""The demo catalog and its loader (``python -m seeds``)."""
