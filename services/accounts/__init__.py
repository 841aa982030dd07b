"""Accounts: sign-up and login, sessions and their tokens, passwords and their reset,
throttles, and account deletion. Stands on services.common; knows nothing of the catalog."""
