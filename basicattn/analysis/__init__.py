"""Analyses of trained networks: what their attention does and which pixels they use.

A layer of its own above :mod:`basicattn.models` and :mod:`basicattn.archs`: it
reads networks (attention taps, gradients), never the other way round. Each
command of ``tools/analyze.py`` is a module of :mod:`basicattn.analysis.commands`.
"""
