"""Importing this package registers every `*_converter.py` module in it."""

from basicattn.utils.module_scan import import_modules_with_suffix

_registered_modules = import_modules_with_suffix(__name__, __path__, '_converter')
