"""Chip targets: one module per chip, its limits, precision and costs with their sources."""
