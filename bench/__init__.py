"""The performance harness: ``make bench`` runs ``python -m bench.run``."""
