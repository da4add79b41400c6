"""Import every module of a package whose file name matches a suffix.

The registries name a package as their ``location``; that package's
``__init__`` calls :func:`import_modules_with_suffix` so that each
``*_arch.py`` (or ``*_loss.py`` ...) registers itself on first use.
"""

import importlib
import pkgutil


def import_modules_with_suffix(package_name: str, package_path, suffix):
    """Import ``package_name.<module>`` for every module ending in ``suffix``.

    Args:
        package_name (str): Dotted name of the package, e.g. ``basicattn.archs``.
        package_path (list[str]): The package's ``__path__``.
        suffix (str | tuple[str]): Module-name suffix(es), e.g. ``'_arch'``.

    Returns:
        list[module]: The imported modules, sorted by name.
    """
    names = sorted(
        info.name for info in pkgutil.iter_modules(package_path) if info.name.endswith(suffix)
    )
    return [importlib.import_module(f'{package_name}.{name}') for name in names]
