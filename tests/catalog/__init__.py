"""Tests of services/catalog and the catalog, playback and admin endpoints."""
