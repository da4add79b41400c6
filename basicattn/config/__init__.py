"""Option files: reading, inheritance, the schema and its validation.

What :func:`read_options` returns is valid: no module downstream checks an
option again; each receives the validated section it needs.
"""

from basicattn.config.options import (
    apply_overrides,
    check_network_config,
    read_options,
    validate_options,
)
from basicattn.errors import OptionError

__all__ = [
    'OptionError',
    'apply_overrides',
    'check_network_config',
    'read_options',
    'validate_options',
]
