"""Benchmarks of trio-chat against a bare relay and IRC servers (issue 5)."""
