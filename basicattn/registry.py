"""The registries of basicattn, children of mmengine's root registries.

Every registry has the scope ``basicattn`` and names the package(s) that fill
it in ``locations``; those packages are imported the first time a name is
looked up, so ``import basicattn`` stays cheap.

mmengine allows one child per scope under a root registry. MODELS (the
training wrappers that the Runner builds) is that child of mmengine's MODELS;
ARCHS and LOSSES are networks too, so they fall back to mmengine's MODELS for
names they lack, but they are not entered as its children and always build
from themselves, whatever the default scope is.
"""

from contextlib import contextmanager
from typing import Iterator, Optional

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import DefaultScope, Registry

SCOPE = 'basicattn'


class OwnScopeRegistry(Registry):
    """A registry that looks names up in itself first, then in ``parent``.

    Unlike a child registry it is not entered in the parent's children, so
    several of them can share the scope ``basicattn`` under one root.
    """

    def __init__(self, name: str, parent: Optional[Registry] = None, **kwargs):
        super().__init__(name, **kwargs)
        self.parent = parent

    @contextmanager
    def switch_scope_and_registry(self, scope: Optional[str]) -> Iterator['OwnScopeRegistry']:
        """Enter ``scope`` as the default scope and build from this registry itself."""
        with DefaultScope.overwrite_default_scope(scope):
            yield self


def _registry(
    name: str, package: str, parent: Optional[Registry] = None, cls: type = Registry
) -> Registry:
    """A registry of scope ``basicattn`` filled by the package ``basicattn.<package>``.

    Args:
        name: The registry's name (``'dataset'``), shown in mmengine's messages.
        package: The subpackage imported on the first look-up (``'data'``).
        parent: The mmengine root it falls back to, if any.
        cls: ``Registry`` (a child of ``parent``) or :class:`OwnScopeRegistry`.
    """
    return cls(name, parent=parent, scope=SCOPE, locations=[f'basicattn.{package}'])


MODELS = _registry('model', 'models', MMENGINE_MODELS)
ARCHS = _registry('arch', 'archs', MMENGINE_MODELS, OwnScopeRegistry)
LOSSES = _registry('loss', 'losses', MMENGINE_MODELS, OwnScopeRegistry)
DATASETS = _registry('dataset', 'data', MMENGINE_DATASETS)
DATA_SAMPLERS = _registry('data sampler', 'data', MMENGINE_DATA_SAMPLERS)
TRANSFORMS = _registry('transform', 'data', MMENGINE_TRANSFORMS)
METRICS = _registry('metric', 'metrics', MMENGINE_METRICS)
HOOKS = _registry('hook', 'engine', MMENGINE_HOOKS)
LOOPS = _registry('loop', 'engine', MMENGINE_LOOPS)
CONVERTERS = _registry('converter', 'converters')


def _scoped_child(parent: Registry, package: Optional[str] = None) -> Registry:
    """A ``basicattn``-scoped child of one of mmengine's root registries.

    ``package`` (``'engine.schedulers'``) is the module holding basicattn's
    own entries, imported on the first look-up.
    """
    locations = [f'basicattn.{package}'] if package else []
    return Registry(parent.name, parent=parent, scope=SCOPE, locations=locations)


# Children of the other roots the Runner builds from, so that building under
# the default scope ``basicattn`` finds mmengine's classes without warnings.
from mmengine import registry as _mm  # noqa: E402

OPTIMIZERS = _scoped_child(_mm.OPTIMIZERS)
OPTIM_WRAPPERS = _scoped_child(_mm.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _scoped_child(_mm.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _scoped_child(_mm.PARAM_SCHEDULERS, 'engine.schedulers')
MODEL_WRAPPERS = _scoped_child(_mm.MODEL_WRAPPERS)
EVALUATOR = _scoped_child(_mm.EVALUATOR)
VISUALIZERS = _scoped_child(_mm.VISUALIZERS)
VISBACKENDS = _scoped_child(_mm.VISBACKENDS)
LOG_PROCESSORS = _scoped_child(_mm.LOG_PROCESSORS)
FUNCTIONS = _scoped_child(_mm.FUNCTIONS)
WEIGHT_INITIALIZERS = _scoped_child(_mm.WEIGHT_INITIALIZERS)

__all__ = [
    'ARCHS',
    'LOSSES',
    'MODELS',
    'DATASETS',
    'DATA_SAMPLERS',
    'TRANSFORMS',
    'METRICS',
    'HOOKS',
    'LOOPS',
    'CONVERTERS',
    'SCOPE',
]
