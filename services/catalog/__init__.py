"""The catalog: videos and their admin, browsing and search with signed cursors, playback
links, plays, watch progress and history. Stands on services.accounts.accounts (sessions, users) and
services.common."""
