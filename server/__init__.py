"""Assembles the service: configuration, database, services, routes, start-up and shutdown."""
