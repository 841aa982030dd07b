"""Tests of server/ and handlers/ as a whole: the process, HTTP edges, configuration, operations."""
