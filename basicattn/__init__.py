"""basicattn: attention-based image and video super-resolution on mmengine.

Importing the package is cheap on purpose: archs, datasets and the engine are
imported by the registries the first time a name is looked up (see
``basicattn.registry``), not here.
"""

from .version import __version__

__all__ = ['__version__']
