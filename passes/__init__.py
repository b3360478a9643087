"""Compiler passes: each takes an IR Graph and returns a new one (ordered by snnconv.pipeline)."""
