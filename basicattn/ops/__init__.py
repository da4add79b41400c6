"""Operators written in plain PyTorch (no compiled extensions)."""
