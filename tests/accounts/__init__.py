"""Tests of services/accounts and the /auth endpoints."""
