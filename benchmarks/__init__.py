"""Benchmarks: simulator throughput and the plain per-agent reference loop it is checked against."""
