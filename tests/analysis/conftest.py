"""Fixtures of the analysis tests (defined in analysis_helpers.py)."""

from analysis_helpers import analyze, tiny_checkpoint  # noqa: F401
