"""Count-like options and bounded arguments are refused at validation, naming the key."""

import importlib.util
import inspect
import os.path as osp
from copy import deepcopy
from typing import Annotated, Optional

import pytest

from basicattn.config import schema as S
from basicattn.config.options import OptionError, apply_overrides, validate_options
from basicattn.config.signature_check import bound_problem, describe_expected, explicit_parameters
from basicattn.utils.bounds import AtLeast, Between, PositiveInt


def _tiny_options():
    """tests/tools/conftest.py's tiny option set (loaded by path: two conftest modules)."""
    path = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools', 'conftest.py')
    spec = importlib.util.spec_from_file_location('tools_conftest_for_ranges', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tiny_options


@pytest.fixture
def base():
    return _tiny_options()('/nonexistent/root')


def problems_of(opt, purpose='train'):
    with pytest.raises(OptionError) as info:
        validate_options(opt, source='x.yml', purpose=purpose)
    return info.value.problems


def with_override(base, *overrides):
    opt = deepcopy(base)
    apply_overrides(opt, list(overrides))
    return opt


BAD_VALUES = [
    ('train.total_iter', 0, 'must be >= 1'),
    ('train.total_iter', -5, 'must be >= 1'),
    ('val.val_freq', 0, 'must be >= 1'),
    ('logger.print_freq', 0, 'must be >= 1'),
    ('logger.save_checkpoint_freq', 0, 'must be >= 1'),
    ('logger.max_keep_ckpts', 0, 'must be -1 or >= 1'),
    ('logger.max_keep_ckpts', -2, 'must be -1 or >= 1'),
    ('datasets.train.batch_size_per_gpu', 0, 'must be >= 1'),
    ('datasets.train.num_worker_per_gpu', -1, 'must be >= 0'),
    ('datasets.val.batch_size_per_gpu', 0, 'must be >= 1'),
    ('val.num_tb_images', -1, 'must be >= 0'),
    ('val.tile', 0, 'must be >= 1'),
    ('val.tile_overlap', -1, 'must be >= 0'),
    ('val.chop_shave', -1, 'must be >= 0'),
    ('train.warmup_iter', -2, 'must be >= -1'),
    ('train.ema_decay', 1, 'must be >= 0 and < 1'),
    ('train.ema_decay', -0.1, 'must be >= 0 and < 1'),
    ('train.clip_grad_norm', -1.0, 'must be >= 0'),
    ('manual_seed', -1, 'must be 0..4294967295'),
    ('manual_seed', 2**32, 'must be 0..4294967295'),
    ('scale', 0, 'must be >= 1'),
    ('dist_params.port', 0, 'must be 1..65535'),
    ('dist_params.port', 65536, 'must be 1..65535'),
    ('dist_params.timeout', 0, 'must be >= 1'),
]


@pytest.mark.parametrize('key,value,message', BAD_VALUES)
def test_out_of_range_value_is_one_problem_naming_the_key(base, key, value, message):
    problems = problems_of(with_override(base, f'{key}={value}'))
    assert problems == [f'{key}: {message}, got {value!r}']


@pytest.mark.parametrize(
    'key,value',
    [
        ('train.total_iter', 1),
        ('val.val_freq', 1),
        ('logger.max_keep_ckpts', -1),
        ('logger.max_keep_ckpts', 1),
        ('datasets.train.num_worker_per_gpu', 0),
        ('val.num_tb_images', 0),
        ('train.warmup_iter', -1),
        ('train.warmup_iter', 0),
        ('val.tile', 32),
        ('val.tile', None),
        ('val.tile_overlap', 0),
        ('train.ema_decay', 0),
        ('train.ema_decay', 0.999),
        ('train.clip_grad_norm', 0),
        ('manual_seed', 0),
        ('dist_params.port', 65535),
        ('dist_params.timeout', 1),
    ],
)
def test_values_on_the_bound_are_accepted(base, key, value):
    opt = with_override(base, f'{key}={"~" if value is None else value}')
    validate_options(opt, source='x.yml')


@pytest.mark.parametrize(
    'key',
    [
        'train.total_iter',
        'val.val_freq',
        'logger.print_freq',
        'datasets.train.batch_size_per_gpu',
        'dist_params.timeout',
    ],
)
def test_bool_is_never_a_count(base, key):
    problems = problems_of(with_override(base, f'{key}=true'))
    assert len(problems) == 1 and problems[0].startswith(f'{key}: expected int, got bool')


def test_every_count_like_key_of_the_schema_has_a_bound():
    counts = [
        'train.total_iter',
        'val.val_freq',
        'logger.print_freq',
        'logger.save_checkpoint_freq',
        'datasets.<set>.batch_size_per_gpu',
        'datasets.<set>.num_worker_per_gpu',
        'val.num_tb_images',
        'val.tile',
        'val.tile_overlap',
        'val.chop_shave',
        'train.warmup_iter',
        'logger.max_keep_ckpts',
        'train.stages.<i>.until_iter',
        'manual_seed',
        'dist_params.port',
        'dist_params.timeout',
        'scale',
    ]
    schema = dict(S.iter_schema())
    unbounded = [key for key in counts if schema[key].bound is None]
    assert not unbounded
    every_int = [
        path
        for path, spec in schema.items()
        if isinstance(spec, S.Field) and int in spec.types and spec.bound is None
    ]
    assert not every_int, f'int keys without a bound: {every_int}'


def test_stage_until_iter_bound(base):
    opt = with_override(base, 'train.stages=[{until_iter: 0}, {until_iter: 6}]')
    assert 'train.stages.0.until_iter: must be >= 1, got 0' in problems_of(opt)


def test_tile_overlap_must_be_smaller_than_tile(base):
    opt = with_override(base, 'val.tile=8', 'val.tile_overlap=8')
    assert problems_of(opt) == ['val.tile_overlap: 8 must be smaller than val.tile (8)']


def test_chop_and_tile_are_alternatives(base):
    opt = with_override(base, 'val.tile=32', 'val.chop=true')
    assert problems_of(opt) == [
        'val.chop: val.chop and val.tile are alternatives; set only one of them'
    ]


def test_several_bad_counts_reported_together(base):
    opt = with_override(
        base, 'train.total_iter=0', 'val.val_freq=0', 'datasets.train.batch_size_per_gpu=0'
    )
    assert len(problems_of(opt)) == 3


@pytest.mark.parametrize(
    'key,value', [('gt_size', 0), ('gt_size', -16), ('scale', 0), ('repeat', 0)]
)
def test_dataset_argument_bounds_name_the_key(base, key, value):
    opt = deepcopy(base)
    opt['datasets']['train'][key] = value
    if key == 'scale':
        opt['scale'] = 2  # the top level stays valid; the dataset's own value is checked
    problems = problems_of(opt)
    assert f'datasets.train.{key}: PairedImageDataset: must be >= 1, got {value}' in problems


@pytest.mark.parametrize(
    'dataset,key',
    [
        ('REDSClipDataset', 'num_frame'),
        ('REDSClipDataset', 'gt_size'),
        ('VimeoSeptupletDataset', 'num_frame'),
        ('VideoTestDataset', 'num_frame'),
        ('VideoTestDataset', 'gt_size'),
        ('PairedImageDataset', 'gt_size'),
    ],
)
def test_video_datasets_bound_crop_sizes_and_frame_counts(dataset, key):
    from basicattn.registry import DATASETS

    params = explicit_parameters(DATASETS.get(dataset))
    assert bound_problem(params[key], 0) == 'must be >= 1, got 0'
    assert bound_problem(params[key], 3) is None
    assert '>= 1' in describe_expected(params[key])


def test_annotated_bounds_in_unions_and_plain_types():
    def target(
        a: PositiveInt = 1,
        b: Optional[PositiveInt] = None,
        c: Annotated[float, Between(0, 1)] = 0.5,
        d: int = 3,
        e: Annotated[int, AtLeast(1, also=(-1,))] = -1,
    ):
        pass

    params = inspect.signature(target).parameters
    hints = explicit_parameters(target)
    assert bound_problem(hints['a'], 0) == 'must be >= 1, got 0'
    assert bound_problem(hints['b'], None) is None
    assert bound_problem(hints['b'], 0) == 'must be >= 1, got 0'
    assert bound_problem(hints['c'], 1.5) == 'must be 0..1, got 1.5'
    assert bound_problem(hints['d'], -7) is None
    assert bound_problem(hints['e'], -1) is None and bound_problem(hints['e'], 0)
    assert describe_expected(hints['b']) == 'int >= 1 or None'
    assert set(params) == set(hints)


def test_custom_dataset_with_bounded_argument(base, tmp_path):
    """A user's own dataset gets the same check through typing.Annotated."""
    (tmp_path / 'bounded_ds.py').write_text(
        'from torch.utils.data import Dataset\n'
        'from basicattn.registry import DATASETS\n'
        'from basicattn.utils.bounds import PositiveInt\n'
        '@DATASETS.register_module(force=True)\n'
        'class BoundedToyDataset(Dataset):\n'
        '    def __init__(self, length: PositiveInt = 4, name=None):\n'
        '        self.length = length\n'
    )
    source = tmp_path / 'opt.yml'
    source.write_text('')
    opt = deepcopy(base)
    opt['custom_imports'] = ['bounded_ds']
    opt['datasets']['val'] = {'type': 'BoundedToyDataset', 'length': 0}
    with pytest.raises(OptionError) as info:
        validate_options(opt, source=str(source))
    assert info.value.problems == ['datasets.val.length: BoundedToyDataset: must be >= 1, got 0']
