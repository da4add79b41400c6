"""Checkpoints and experiment folders: the one safe loader and writer.

:mod:`.io` loads any checkpoint safely (weights-only unpickling, safetensors,
URLs); :mod:`.state` reads and writes its parts (weights, meta, scale);
:mod:`.safetensors_io` is the ``.safetensors`` format; :mod:`.work_dir`,
:mod:`.run_lock` and :mod:`.partial_load` are the rules of an experiment
folder and of loading weights into a network.
"""
