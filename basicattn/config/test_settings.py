"""The test-time settings of the SR models, written once.

:class:`TestConfig` (:class:`~basicattn.models.sr_model.SRModel`) and
:class:`VideoTestConfig` (:class:`~basicattn.models.video_sr_model.VideoSRModel`)
are the only place where a test-time setting is named, typed, bounded,
documented and checked:

* the models build their ``test_cfg`` argument into one of them;
* the option schema (``basicattn/config/schema.py``) generates its
  ``val.<setting>`` entries from :func:`option_settings`, and so
  ``docs/options.md`` (``tools/gen_option_docs.py``);
* ``basicattn.engine.builder.model_cfg`` turns the ``val`` section into the
  model's ``test_cfg`` with :meth:`TestConfig.from_options`.

A setting is a dataclass field whose metadata holds a one-line ``help``, an
optional numeric ``bound`` (:mod:`basicattn.utils.bounds`) and ``option``
(False: a model argument only, not an option key).
"""

import dataclasses
import typing
from dataclasses import InitVar, dataclass, field
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple, Type, TypeVar, Union

from basicattn.config.compile_settings import COMPILE_VALUE
from basicattn.errors import OptionError
from basicattn.utils.bounds import AtLeast, Bound

__all__ = ['Setting', 'TestConfig', 'VideoTestConfig', 'option_settings']

__test__ = False  # not a pytest module despite its name

NoneType = type(None)
ConfigT = TypeVar('ConfigT', bound='TestConfig')


def _setting(
    default: Any,
    help: str,
    bound: Optional[Bound] = None,
    option: bool = True,
    choices: Optional[Tuple[Any, ...]] = None,
) -> Any:
    metadata = dict(help=help, bound=bound, option=option, choices=choices)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Setting:
    """One test-time setting as the option schema sees it.

    Attributes:
        name: The key (``val.<name>`` in an option file, ``test_cfg[name]``).
        types: Allowed Python types (``NoneType`` when None is allowed).
        default: The default value.
        help: One line for the option reference.
        bound: Numeric bound, or None.
        owner: Name of the config class that introduces the setting.
        choices: The allowed values of a string setting (None among them
            when it may be null), or None.
    """

    name: str
    types: Tuple[type, ...]
    default: Any
    help: str
    bound: Optional[Bound]
    owner: str
    choices: Optional[Tuple[Any, ...]] = None


@dataclass
class TestConfig:
    """Test-time settings of :class:`~basicattn.models.sr_model.SRModel`.

    Self-ensemble (if on) wraps tiling or chop (if on): each of the 8
    transformed inputs is run tiled, transformed back and the 8 outputs are
    averaged (:mod:`basicattn.models.tiled_inference`).

    Raises:
        OptionError: A value of the wrong type, outside its bound, or a
            combination that cannot work (overlap >= tile, tile and chop);
            the message names the key (``test_cfg.<key>`` or ``val.<key>``).
    """

    __test__: ClassVar[bool] = False  # not a pytest class despite its name
    #: The model the settings belong to (for messages).
    model: ClassVar[str] = 'SRModel'

    #: Prefix of the key names in messages: ``'test_cfg'`` or ``'val'``.
    where: InitVar[str] = 'test_cfg'
    self_ensemble: bool = _setting(False, 'Average the 8 flips/rotations at test time.')
    tile: Optional[int] = _setting(
        None, 'Tiled inference: LR tile size (None: whole image).', AtLeast(1)
    )
    tile_overlap: int = _setting(
        8, 'Overlap of neighbouring tiles, LR pixels (smaller than `tile`).', AtLeast(0)
    )
    chop: bool = _setting(
        False,
        "EDSR-PyTorch quadrant inference (`--chop` of many authors' codes), to reproduce "
        'numbers measured that way.',
    )
    chop_shave: int = _setting(
        10, 'Overlap of the chop quadrants past the middle, LR pixels.', AtLeast(0)
    )
    amp: Optional[str] = _setting(
        None,
        'Inference under autocast to `bf16` or `fp16` (null: float32); the '
        'predictions are returned as float32.',
        choices=('bf16', 'fp16', None),
    )
    channels_last: Optional[bool] = _setting(
        None,
        'Run the network with channels_last (NHWC) weights and inputs; null: the '
        "arch's measured preference (A2N, DAN, EDSR: channels_last; docs/ops.md). "
        'In training runs the network keeps `train.channels_last`.',
    )
    compile: Union[bool, dict] = _setting(
        False,
        'torch.compile the network for inference (eval mode): true or '
        '`{mode, dynamic, backend}` (fullgraph off, graph breaks are logged); the first '
        'call compiles and new input sizes may recompile; the default inductor backend '
        'needs a C++ compiler.',
        bound=COMPILE_VALUE,
    )
    clamp: bool = _setting(True, 'Clamp the predictions to [0, 1].', option=False)

    def __post_init__(self, where: str) -> None:
        self.check(where)

    def check(self, where: str = 'test_cfg') -> None:
        """Check every value and the combinations; ``where`` prefixes the key names.

        A ``tile`` of 0 is read as None (tiling off), as it always was for
        ``test_cfg``; the option ``val.tile`` is >= 1 or null.
        """
        if self.tile == 0 and not isinstance(self.tile, bool):
            self.tile = None
        for item in dataclasses.fields(self):
            _check_value(where, item, getattr(self, item.name))
        if self.tile is not None and self.tile_overlap >= self.tile:
            raise OptionError(
                f'{where}.tile_overlap: {self.tile_overlap} must be smaller than '
                f'{where}.tile ({self.tile})'
            )
        if self.chop and self.tile:
            raise OptionError(
                f'{where}.chop: {where}.chop and {where}.tile are alternatives; '
                'set only one of them'
            )

    @classmethod
    def from_dict(
        cls: Type[ConfigT], cfg: Optional[Mapping[str, Any]], owner: Optional[str] = None
    ) -> ConfigT:
        """Build from a ``test_cfg`` mapping (None: all defaults).

        Args:
            cfg: Settings to change from their defaults.
            owner: The model's name, for the message about a setting of
                another model (default: the config class's model).

        Raises:
            TypeError: ``cfg`` is not a mapping.
            OptionError: An unknown key, or a bad value (see :meth:`check`).
        """
        if cfg is None:
            cfg = {}
        if isinstance(cfg, cls):
            return dataclasses.replace(cfg)
        if not isinstance(cfg, Mapping):
            raise TypeError(f'test_cfg must be a dict or None, got {type(cfg).__name__}')
        names = cls.names()
        for key in cfg:
            if key in names:
                continue
            other = _owner_of(key)
            if other is not None:
                raise OptionError(
                    f'test_cfg.{key} is a setting of {other}, which {owner or cls.model} '
                    f'does not have (use {other})'
                )
            raise OptionError(f'unknown test_cfg key {key!r}; allowed keys are {sorted(names)}')
        return cls(**cfg)

    @classmethod
    def from_options(cls, val: Optional[Mapping[str, Any]], model_type: str) -> Dict[str, Any]:
        """The model's ``test_cfg`` from an option file's ``val`` section.

        Every option setting of this class is taken from ``val`` (its default
        where absent) and checked with ``val.<key>`` in the messages. A setting
        of another model's config set to a non-default value is refused.

        Args:
            val: The ``val`` section (other keys of it are ignored).
            model_type: The ``model_type`` option, for the messages.

        Returns:
            dict: Plain ``{key: value}`` of this class's option settings.

        Raises:
            OptionError: Naming the ``val.<key>`` at fault.
        """
        val = val or {}
        names = {item.name for item in cls.option_fields()}
        for setting in option_settings():
            value = val.get(setting.name, setting.default)
            if setting.name not in names and value != setting.default:
                raise OptionError(
                    f'val.{setting.name}: {setting.name} is a setting of '
                    f'{setting.owner}, which model_type {model_type} does not have '
                    f'(set model_type: {setting.owner} or remove val.{setting.name})'
                )
        config = cls(**{name: val[name] for name in names if name in val}, where='val')
        return {item.name: getattr(config, item.name) for item in cls.option_fields()}

    @classmethod
    def names(cls) -> List[str]:
        """Every setting of this class (option keys and model-only ones)."""
        return [item.name for item in dataclasses.fields(cls)]

    @classmethod
    def option_fields(cls) -> List[dataclasses.Field]:
        """The fields that are option keys (``val.<name>``), in order."""
        return [item for item in dataclasses.fields(cls) if item.metadata.get('option', True)]

    def to_dict(self) -> Dict[str, Any]:
        """``{key: value}`` of every setting."""
        return dataclasses.asdict(self)


@dataclass
class VideoTestConfig(TestConfig):
    """Test-time settings of :class:`~basicattn.models.video_sr_model.VideoSRModel`.

    Adds ``sequence``: for archs with a recurrent state, carry it from each
    frame of a clip to the next; it works on whole frames, so it cannot be
    combined with ``tile``, ``chop`` or ``self_ensemble``.
    """

    model: ClassVar[str] = 'VideoSRModel'

    sequence: bool = _setting(
        False,
        'Video archs with a recurrent state (DASAA): carry it from each frame of a clip '
        'to the next (VideoSRModel only).',
    )

    def check(self, where: str = 'test_cfg') -> None:
        """:meth:`TestConfig.check`, and ``sequence`` only on whole frames."""
        super().check(where)
        if self.sequence and (self.tile or self.chop or self.self_ensemble):
            raise OptionError(
                f'{where}.sequence: carries a recurrent state over whole frames; it cannot be '
                'combined with tile, chop or self_ensemble'
            )


_CONFIG_CLASSES = (TestConfig, VideoTestConfig)


def _types_of(cls: type, item: dataclasses.Field) -> Tuple[type, ...]:
    annotation = typing.get_type_hints(cls)[item.name]
    args = typing.get_args(annotation)
    return tuple(args) if args else (annotation,)


def _check_value(where: str, item: dataclasses.Field, value: Any) -> None:
    """Raise OptionError when ``value`` does not fit the field's type or bound."""
    key = f'{where}.{item.name}'
    choices = item.metadata.get('choices')
    bound = item.metadata.get('bound')
    if bound is not None and not _is_int_field(item):  # a rule of its own (compile)
        problem = bound.problem(value)
        if problem:
            raise OptionError(f'{key}: {problem}')
        return
    if choices is not None:
        if value not in choices or isinstance(value, bool):
            names = ', '.join('null' if c is None else repr(c) for c in choices)
            raise OptionError(f'{key}: must be one of {names}, got {value!r}')
        return
    if item.type is bool or item.type == Optional[bool]:
        if not isinstance(value, bool) and not (value is None and item.type is not bool):
            what = 'true or false' if item.type is bool else 'true, false or null'
            raise OptionError(f'{key}: must be {what}, got {value!r}')
        return
    optional = value is None and item.default is None
    ok = optional or (isinstance(value, int) and not isinstance(value, bool))
    if ok and not optional and bound is not None:
        ok = bound.allows(value)
    if not ok:
        what = f'an int {bound.describe()}' if bound is not None else 'an int'
        if item.default is None:
            what += ' or None (0 or None: off)'
        raise OptionError(f'{key}: must be {what}, got {value!r}')


def _is_int_field(item: dataclasses.Field) -> bool:
    return item.type in (int, Optional[int])


def _owner_of(key: str) -> Optional[str]:
    """The model of the first config class with the setting ``key``, or None."""
    for cls in _CONFIG_CLASSES:
        if key in cls.names():
            return cls.model
    return None


def option_settings() -> List[Setting]:
    """Every test-time option key of every model, in order, for the option schema."""
    seen: Dict[str, Setting] = {}
    for cls in _CONFIG_CLASSES:
        for item in cls.option_fields():
            if item.name not in seen:
                seen[item.name] = Setting(
                    name=item.name,
                    types=_types_of(cls, item),
                    default=item.default,
                    help=item.metadata['help'],
                    bound=item.metadata.get('bound'),
                    owner=cls.model,
                    choices=item.metadata.get('choices'),
                )
    return list(seen.values())
