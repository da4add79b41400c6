"""Option files: defaults, scale propagation, ``--set``, custom_imports and the
error messages for bad files (file path, key path, did-you-mean, all at once)."""

import importlib
import sys
import textwrap

import pytest
import torch
import yaml

from basicattn.config.options import (
    OptionError,
    apply_overrides,
    did_you_mean,
    read_options,
    validate_options,
)
from basicattn.config.yaml_io import OptionLoader, dump_yaml, load_yaml_file

GOOD = textwrap.dedent("""\
    name: opt_test
    scale: 2
    datasets:
      train:
        type: PairedImageDataset
        dataroot_gt: /nonexistent/train/HR
        gt_size: 16
        batch_size_per_gpu: 2
      val:
        name: tinyval
        type: PairedImageDataset
        dataroot_gt: /nonexistent/val/HR
    network_g:
      type: EDSR
      num_feat: 8
      num_block: 1
    train:
      optim_g: {type: Adam, lr: 1e-3}
      scheduler: {type: MultiStepLR, milestones: [3], gamma: 0.5}
      total_iter: 6
      losses:
        pixel: {type: L1Loss}
    val:
      val_freq: 3
      metrics:
        psnr: {type: PSNR, crop_border: 2, test_y_channel: true}
    """)


def write(tmp_path, text, name='options.yml'):
    path = tmp_path / name
    path.write_text(text, encoding='utf-8')
    return str(path)


def write_modified(tmp_path, change, name='options.yml'):
    """Write GOOD after ``change(dict)`` edited it."""
    opt = load_yaml_file(write(tmp_path, GOOD, 'base.yml'))
    change(opt)
    return write(tmp_path, dump_yaml(opt), name)


def load_yaml_file_from_text(text):
    return yaml.load(text, Loader=OptionLoader)


def problems_of(path, purpose='train', overrides=()):
    with pytest.raises(OptionError) as info:
        read_options(path, overrides, purpose=purpose)
    return info.value


# -- a valid file ----------------------------------------------------------------
def test_valid_file_gets_defaults_and_scale(tmp_path):
    path = write(tmp_path, GOOD)
    opt = read_options(path)
    assert opt['_source'] == path
    # defaults of plain keys, sections and loader keys
    assert opt['model_type'] == 'SRModel'
    assert opt['manual_seed'] == 0
    assert opt['custom_imports'] == []
    assert opt['train']['warmup_iter'] == -1
    assert opt['train']['ema_decay'] == 0.0
    assert opt['train']['clip_grad_norm'] is None
    assert opt['val']['save_img'] is False and opt['val']['tile_overlap'] == 8
    assert opt['train']['optim_g']['lr'] == 1e-3
    # scale goes to the network and to every dataset that takes it
    assert opt['network_g']['upscale'] == 2
    assert opt['datasets']['train']['scale'] == 2
    assert opt['datasets']['val']['scale'] == 2
    # given values are kept
    assert opt['val']['val_freq'] == 3
    assert opt['datasets']['train']['batch_size_per_gpu'] == 2


def test_present_sections_are_filled(tmp_path):
    text = GOOD + 'logger: {print_freq: 7}\npath: {}\ndist_params: {}\n'
    opt = read_options(write(tmp_path, text))
    assert opt['logger'] == {
        'print_freq': 7,
        'save_checkpoint_freq': 5000,
        'max_keep_ckpts': -1,
        'save_weights': None,
        'use_tb_logger': True,
        'wandb': {'project': None, 'entity': None, 'resume_id': None},
    }
    assert opt['path']['pretrain_network_g'] is None
    assert opt['path']['strict_load_g'] is True
    assert opt['dist_params'] == {'backend': 'auto', 'port': 29500, 'timeout': 600}


def test_absent_optional_sections_are_accepted(tmp_path):
    opt = read_options(write(tmp_path, GOOD))
    assert opt['name'] == 'opt_test'


def test_matching_explicit_scale_is_accepted(tmp_path):
    path = write_modified(
        tmp_path, lambda o: (o['network_g'].update(upscale=2), o['datasets']['val'].update(scale=2))
    )
    opt = read_options(path)
    assert opt['network_g']['upscale'] == 2


# -- the three bad files ------------------------------------------------------------
def test_typo_in_key_and_in_arch_argument(tmp_path):
    path = write(
        tmp_path,
        GOOD.replace('total_iter: 6', 'totla_iter: 6').replace('num_feat: 8', 'num_feats: 8'),
        'typo.yml',
    )
    err = problems_of(path)
    text = str(err)
    assert path in text
    assert 'train.totla_iter' in text and "Did you mean 'total_iter'" in text
    assert 'network_g.num_feats' in text and "'num_feat'" in text
    assert 'EDSR' in text  # names the class whose argument it is not
    # the now-missing total_iter is reported too
    assert 'train.total_iter: required key is missing' in text
    assert err.source == path and len(err.problems) == 3


def test_unknown_types(tmp_path):
    text = (
        GOOD.replace('type: EDSR', 'type: EDSRR')
        .replace('{type: L1Loss}', '{type: L1Los}')
        .replace('{type: PSNR,', '{type: PSNRR,')
    )
    path = write(tmp_path, text, 'unknown_type.yml')
    message = str(problems_of(path))
    assert path in message
    assert "network_g.type: unknown arch 'EDSRR'" in message
    assert "Did you mean 'EDSR'" in message
    assert "train.losses.pixel.type: unknown loss 'L1Los'" in message
    assert "'L1Loss'" in message
    assert "val.metrics.psnr.type: unknown metric 'PSNRR'" in message
    assert "'PSNR'?" in message
    assert message.startswith('3 problem(s)')


def test_unknown_optimizer_scheduler_model_and_dataset(tmp_path):
    def change(o):
        o['train']['optim_g']['type'] = 'Adamm'
        o['train']['scheduler']['type'] = 'MultiStepLRR'
        o['datasets']['val']['type'] = 'PairedImageDatset'

    message = str(problems_of(write_modified(tmp_path, change)))
    assert 'train.optim_g.type' in message and "'Adam'" in message
    assert 'train.scheduler.type' in message and "'MultiStepLR'" in message
    assert 'datasets.val.type' in message and "'PairedImageDataset'" in message


def test_unknown_model_type(tmp_path):
    message = str(problems_of(write_modified(tmp_path, lambda o: o.update(model_type='SRModle'))))
    assert "model_type: unknown model 'SRModle'" in message and "'SRModel'" in message


def test_wrong_value_types(tmp_path):
    text = (
        GOOD.replace('total_iter: 6', "total_iter: '1000x'")
        .replace('num_feat: 8', 'num_feat: 1.5')
        .replace('val_freq: 3', "val_freq: 3\n  save_img: 'yes'")
    )
    path = write(tmp_path, text, 'wrong_type.yml')
    err = problems_of(path)
    message = str(err)
    assert path in message
    assert "train.total_iter: expected int, got str '1000x'" in message
    assert 'network_g.num_feat: EDSR expects int >= 1, got float 1.5' in message
    assert "val.save_img: expected bool, got str 'yes'" in message
    assert len(err.problems) == 3


@pytest.mark.parametrize(
    'key, value, expected',
    [
        ('num_block', True, 'expects int, got bool'),  # bool is not an int here
        ('res_scale', 'big', 'expects float, got str'),
        ('rgb_mean', 0.5, 'expects Sequence[float], got float'),
    ],
)
def test_arch_argument_types_from_annotations(tmp_path, key, value, expected):
    path = write_modified(tmp_path, lambda o: o['network_g'].update({key: value}))
    message = str(problems_of(path))
    assert f'network_g.{key}' in message and expected in message


def test_int_accepted_where_float_default(tmp_path):
    opt = read_options(write_modified(tmp_path, lambda o: o['network_g'].update(res_scale=1)))
    assert opt['network_g']['res_scale'] == 1


def test_misplaced_key_names_its_section(tmp_path):
    def change(o):
        o['val_freq'] = 5
        o['train']['print_freq'] = 10
        o['metrics'] = {}

    message = str(problems_of(write_modified(tmp_path, change)))
    assert "val_freq: unknown key. It belongs under 'val'." in message
    assert "train.print_freq: unknown key. It belongs under 'logger'." in message
    assert "metrics: unknown key. It belongs under 'val'." in message


def test_missing_required_keys(tmp_path):
    def change(o):
        del o['scale']
        del o['name']

    err = problems_of(write_modified(tmp_path, change))
    assert 'scale: required key is missing' in str(err)
    assert 'name: required key is missing' in str(err)


def test_missing_required_sections_and_arguments(tmp_path):
    def change(o):
        del o['network_g']
        del o['train']['losses']
        del o['datasets']['val']['dataroot_gt']

    message = str(problems_of(write_modified(tmp_path, change)))
    assert 'network_g: required section is missing' in message
    assert 'train.losses: required section is missing' in message
    assert 'datasets.val.dataroot_gt: required argument of PairedImageDataset' in message


@pytest.mark.parametrize('where', ['network', 'dataset'])
def test_scale_conflict(tmp_path, where):
    def change(o):
        if where == 'network':
            o['network_g']['upscale'] = 4
        else:
            o['datasets']['train']['scale'] = 3

    message = str(problems_of(write_modified(tmp_path, change)))
    if where == 'network':
        assert 'network_g.upscale: 4 differs from scale: 2' in message
    else:
        assert 'datasets.train.scale: 3 differs from scale: 2' in message


def test_all_problems_reported_at_once(tmp_path):
    text = (
        GOOD.replace('total_iter: 6', 'totla_iter: 6')
        .replace('type: EDSR', 'type: EDSRR')
        .replace('{type: L1Loss}', '{type: L1Los}')
        .replace('val_freq: 3', "save_img: 'yes'")
        .replace('scale: 2\n', 'val_freq: 3\n')
    )
    path = write(tmp_path, text, 'everything_wrong.yml')
    err = problems_of(path)
    assert len(err.problems) == 7, err.problems
    message = str(err)
    assert message.startswith(f'7 problem(s) in option file {path}:')
    for fragment in [
        'val_freq: unknown key',
        'scale: required key is missing',
        'network_g.type',
        'train.totla_iter',
        'train.total_iter',
        'train.losses.pixel.type',
        'val.save_img',
    ]:
        assert fragment in message
    # every problem line names the file
    assert all(line.strip().startswith(path) for line in message.splitlines()[1:])


def test_loader_and_dataset_keys(tmp_path):
    def change(o):
        o['datasets']['train']['batch_size_per_gpu'] = 'two'
        o['datasets']['train']['gt_sise'] = 16
        o['datasets']['tset_set5'] = dict(o['datasets']['val'])

    message = str(problems_of(write_modified(tmp_path, change)))
    assert "datasets.train.batch_size_per_gpu: expected int, got str 'two'" in message
    assert 'datasets.train.gt_sise: unknown argument of PairedImageDataset' in message
    assert "'gt_size'" in message
    assert 'datasets.tset_set5: unknown dataset key' in message


@pytest.mark.parametrize(
    'typo, meant', [('num_worker_per_gpus', 'num_worker_per_gpu'), ('use_shufle', 'use_shuffle')]
)
def test_loader_key_typo_suggests_loader_key(tmp_path, typo, meant):
    path = write_modified(tmp_path, lambda o: o['datasets']['train'].update({typo: 1}))
    message = str(problems_of(path))
    assert f'datasets.train.{typo}' in message and f"Did you mean '{meant}'" in message


def test_injected_argument_and_choices(tmp_path):
    def change(o):
        o['train']['optim_g']['params'] = []
        o['dist_params'] = {'backend': 'ncl'}

    message = str(problems_of(write_modified(tmp_path, change)))
    assert 'train.optim_g.params: set by basicattn; remove it' in message
    assert "dist_params.backend: 'ncl' is not one of" in message


def test_did_you_mean_helper():
    assert "'total_iter'" in did_you_mean('totla_iter', ['total_iter', 'losses'])
    assert did_you_mean('zzz', ['a', 'b']) == ' Valid: a, b.'
    assert did_you_mean('zzz', [f'name{i}' for i in range(20)]) == ''


# -- purposes and null blocks -----------------------------------------------------
def test_test_purpose_does_not_need_train(tmp_path):
    path = write_modified(tmp_path, lambda o: o.pop('train'))
    opt = read_options(path, purpose='test')
    assert 'train' not in opt
    assert 'train: required section is missing' in str(problems_of(path, purpose='train'))


def test_test_purpose_ignores_incomplete_train(tmp_path):
    path = write_modified(tmp_path, lambda o: o['train'].pop('total_iter'))
    read_options(path, purpose='test')


@pytest.mark.parametrize('block', ['val', 'logger', 'path', 'dist_params'])
def test_optional_block_set_to_null(tmp_path, block):
    path = write_modified(tmp_path, lambda o: o.update({block: None}))
    opt = read_options(path)
    # `block: ~` means "all defaults": the section is filled like an absent one
    from basicattn.config.schema import OPTION_SCHEMA, Field, Section

    fields = OPTION_SCHEMA.fields[block].fields.items()
    plain = {k for k, v in fields if isinstance(v, (Field, Section))}  # sections fill too
    assert set(opt[block]) == plain


@pytest.mark.parametrize('key', ['scheduler', 'clip_grad_norm'])
def test_optional_train_entries_set_to_null(tmp_path, key):
    opt = read_options(write_modified(tmp_path, lambda o: o['train'].update({key: None})))
    assert opt['train'][key] is None


def test_null_train_section_rejected_for_training(tmp_path):
    path = write_modified(tmp_path, lambda o: o.update(train=None))
    assert 'train' in str(problems_of(path))


def test_missing_optimizer_rejected_for_training(tmp_path):
    path = write_modified(tmp_path, lambda o: o['train'].pop('optim_g'))
    assert 'train.optim_g' in str(problems_of(path))


def test_non_mapping_values(tmp_path):
    def change(o):
        o['network_g'] = 'EDSR'
        o['logger'] = [1, 2]
        o['datasets']['val'] = 5

    message = str(problems_of(write_modified(tmp_path, change)))
    assert 'network_g: expected a mapping with a `type:` key, got str' in message
    assert 'logger: expected a mapping, got list' in message
    assert 'datasets.val: expected a mapping' in message


def test_missing_type_key(tmp_path):
    message = str(problems_of(write_modified(tmp_path, lambda o: o['network_g'].pop('type'))))
    assert 'network_g.type: missing' in message


# -- --set overrides ----------------------------------------------------------------
def test_set_overrides_are_yaml_literals(tmp_path):
    path = write(tmp_path, GOOD)
    opt = read_options(
        path,
        [
            'train.optim_g.lr=1e-4',
            'train.scheduler.milestones=[2, 4]',
            'val.save_img=true',
            'name=renamed',
            'train.clip_grad_norm=null',
        ],
    )
    assert opt['train']['optim_g']['lr'] == 1e-4
    assert isinstance(opt['train']['optim_g']['lr'], float)
    assert opt['train']['scheduler']['milestones'] == [2, 4]
    assert opt['val']['save_img'] is True
    assert opt['name'] == 'renamed'
    assert opt['train']['clip_grad_norm'] is None


def test_set_creates_nested_mappings():
    opt = apply_overrides({'a': {'keep': 1}}, ['a.b=[1,2]', 'x.y.z=3', 'n=5E3', 'a.c={d: 1}'])
    assert opt == {'a': {'keep': 1, 'b': [1, 2], 'c': {'d': 1}}, 'x': {'y': {'z': 3}}, 'n': 5000.0}


def test_set_replaces_null_blocks():
    assert apply_overrides({'val': None}, ['val.val_freq=10']) == {'val': {'val_freq': 10}}


def test_set_never_evaluates(tmp_path):
    marker = tmp_path / 'evaluated'
    code = f"__import__('pathlib').Path('{marker}').touch()"
    opt = apply_overrides(
        {}, [f'name={code}', "other=__import__('os')", 'tag=!!python/object/apply:os.getcwd []']
    )
    assert opt == {
        'name': code,
        'other': "__import__('os')",
        'tag': '!!python/object/apply:os.getcwd []',
    }
    assert not marker.exists()


def test_set_value_with_equals_sign():
    assert apply_overrides({}, ['name=a=b']) == {'name': 'a=b'}


@pytest.mark.parametrize(
    'item, fragment',
    [
        ('train.total_iter', 'expected KEY.PATH=VALUE'),
        ('=3', 'empty key path'),
        ('name.x=1', 'name: is a str, cannot set name.x inside it'),
    ],
)
def test_bad_overrides(item, fragment):
    with pytest.raises(OptionError) as info:
        apply_overrides({'name': 'n'}, [item])
    assert fragment in str(info.value) and '--set' in str(info.value)


def test_set_value_is_validated(tmp_path):
    path = write(tmp_path, GOOD)
    err = problems_of(path, overrides=['val.val_freq=often', 'train.totl_iter=3'])
    assert "val.val_freq: expected int, got str 'often'" in str(err)
    assert "train.totl_iter: unknown key. Did you mean 'total_iter'" in str(err)
    assert path in str(err)


# -- custom_imports ---------------------------------------------------------------
USER_ARCH = textwrap.dedent("""\
    from torch import nn

    from basicattn.registry import ARCHS


    @ARCHS.register_module()
    class TmpUserNet(nn.Module):
        def __init__(self, num_feat: int = 4, upscale: int = 4):
            super().__init__()
            self.body = nn.Conv2d(3, 3 * upscale * upscale, 3, 1, 1)
            self.shuffle = nn.PixelShuffle(upscale)
            self.num_feat = num_feat

        def forward(self, x):
            return self.shuffle(self.body(x))
    """)


@pytest.fixture
def clean_imports(monkeypatch):
    """Restore sys.path, forget the user module and its registered arch afterwards."""
    from basicattn.registry import ARCHS

    monkeypatch.setattr(sys, 'path', list(sys.path))
    yield
    sys.modules.pop('my_tiny_arch', None)
    ARCHS._module_dict.pop('TmpUserNet', None)
    importlib.invalidate_caches()


def test_custom_imports_from_option_folder(tmp_path, monkeypatch, clean_imports):
    from basicattn.registry import ARCHS

    user = tmp_path / 'user'
    user.mkdir()
    (user / 'my_tiny_arch.py').write_text(USER_ARCH, encoding='utf-8')
    text = (
        GOOD.replace('type: EDSR\n  num_feat: 8\n  num_block: 1', 'type: TmpUserNet\n  num_feat: 6')
        + 'custom_imports: [my_tiny_arch]\n'
    )
    path = write(user, text)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    importlib.invalidate_caches()

    opt = read_options(path)
    assert opt['network_g'] == {'type': 'TmpUserNet', 'num_feat': 6, 'upscale': 2}
    net = ARCHS.build(opt['network_g'])
    assert type(net).__name__ == 'TmpUserNet'
    assert net(torch.zeros(1, 3, 4, 5)).shape == (1, 3, 8, 10)


def test_custom_imports_arguments_are_checked(tmp_path, monkeypatch, clean_imports):
    user = tmp_path / 'user'
    user.mkdir()
    (user / 'my_tiny_arch.py').write_text(USER_ARCH, encoding='utf-8')
    text = (
        GOOD.replace(
            'type: EDSR\n  num_feat: 8\n  num_block: 1', 'type: TmpUserNet\n  num_feats: 6'
        )
        + 'custom_imports: my_tiny_arch\n'
    )  # a single name is accepted as well
    path = write(user, text)
    monkeypatch.chdir(tmp_path)
    importlib.invalidate_caches()
    message = str(problems_of(path))
    assert "network_g.num_feats: unknown argument of TmpUserNet. Did you mean 'num_feat'" in message


def test_custom_imports_unimportable(tmp_path, clean_imports):
    path = write(tmp_path, GOOD + 'custom_imports: [no_such_module_basicattn_xyz]\n')
    err = problems_of(path)
    assert 'custom_imports' in str(err)
    assert 'no_such_module_basicattn_xyz' in str(err)


@pytest.mark.parametrize('value', ['5', '[1]'])
def test_custom_imports_wrong_type(tmp_path, clean_imports, value):
    path = write(tmp_path, GOOD + f'custom_imports: {value}\n')
    assert 'custom_imports' in str(problems_of(path))


def test_validate_options_on_a_dict():
    opt = load_yaml_file_from_text(GOOD)
    out = validate_options(opt, source='<memory>')
    assert out is opt and opt['_source'] == '<memory>'
    opt2 = load_yaml_file_from_text(GOOD.replace('total_iter: 6', 'total_iter: x'))
    with pytest.raises(OptionError) as info:
        validate_options(opt2, source='<memory>')
    assert str(info.value).startswith('1 problem(s) in option file <memory>')


# -- issue 22: one pass, unknown archs, gt_size ------------------------------------


def test_unknown_arch_does_not_hide_the_other_checks(tmp_path):
    """The registered-model, scale and test-time checks run beside an unknown arch."""
    text = (
        GOOD.replace('type: EDSR', 'type: RCAN')
        .replace('gt_size: 16', 'gt_size: 15')
        .replace('scale: 2\n', 'scale: 2\nmodel_type: SRModell\n', 1)
    )
    err = problems_of(write(tmp_path, text, 'two_unknowns.yml'))
    assert len(err.problems) == 3, err.problems
    assert err.problems[0].startswith("network_g.type: unknown arch 'RCAN'.")
    assert err.problems[1].startswith(
        "model_type: unknown model 'SRModell'. Did you mean 'SRModel'"
    )
    assert err.problems[2].startswith('datasets.train.gt_size: 15 is not a multiple of scale: 2')


@pytest.mark.parametrize(
    'written, close', [('RCAN', None), ('SwinIR', None), ('edsr', 'EDSR'), ('EDSRR', 'EDSR')]
)
def test_unknown_arch_lists_the_archs_and_custom_imports(tmp_path, written, close):
    err = problems_of(write(tmp_path, GOOD.replace('type: EDSR', f'type: {written}')))
    (problem,) = err.problems
    hint = f" Did you mean '{close}'?" if close else ''
    from basicattn.registry import ARCHS

    ARCHS.import_from_location()
    listed = ', '.join(sorted(ARCHS.module_dict))  # every registered arch, in name order
    assert problem.startswith(
        f"network_g.type: unknown arch '{written}'.{hint} Registered archs: {listed}. "
    )
    assert listed.startswith('A2N, ') and ', EDSR, ' in listed
    assert 'DAN' not in problem.split('Registered')[0]  # not RCAN -> DAN
    assert problem.endswith('name it in `custom_imports` (docs/options.md).')


@pytest.mark.parametrize('gt_size, advice', [(15, 'use 14 or 16'), (1, 'use 2')])
def test_gt_size_must_be_a_multiple_of_the_scale(tmp_path, gt_size, advice):
    err = problems_of(write(tmp_path, GOOD.replace('gt_size: 16', f'gt_size: {gt_size}')))
    assert err.problems == [
        f'datasets.train.gt_size: {gt_size} is not a multiple of scale: 2 (the LQ patch is '
        f'gt_size / scale pixels); {advice}'
    ]
