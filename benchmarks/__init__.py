"""Benchmarks: speed and memory targets live here, never in the tests. ``make bench`` runs them all."""
