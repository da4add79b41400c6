"""``_base_`` in option files: merge order, list replacement, ``_delete_``, nested and
relative bases, the errors (cycle, missing base, wrong types), errors that name the
file in which a bad key was written, ``--set`` after merging; and the shipped files
that were rewritten as deltas on a base still read exactly as they did."""

import json
import os
import os.path as osp
import textwrap

import pytest

from basicattn.config.options import OptionError, load_option_file, read_options

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIXTURE = osp.join(osp.dirname(osp.abspath(__file__)), 'fixtures', 'merged_options.json')

# a complete EDSR x2 training file, split in a base and a child below
BASE = textwrap.dedent("""\
    model_type: SRModel
    datasets:
      train:
        type: PairedImageDataset
        dataroot_gt: /nonexistent/train/HR
        gt_size: 16
        batch_size_per_gpu: 2
    network_g: {type: EDSR, num_feat: 8, num_block: 1}
    train:
      optim_g: {type: Adam, lr: 1e-3}
      scheduler: {type: MultiStepLR, milestones: [3, 5], gamma: 0.5}
      total_iter: 6
      losses:
        pixel: {type: L1Loss}
    val:
      val_freq: 3
      metrics:
        psnr: {type: PSNR, crop_border: 2, test_y_channel: true}
    """)
CHILD = textwrap.dedent("""\
    _base_: _base_/edsr.yml
    name: child
    scale: 2
    datasets:
      val: {name: tinyval, type: PairedImageDataset, dataroot_gt: /nonexistent/val/HR}
    """)


def write(folder, name, text):
    path = osp.join(str(folder), name)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(textwrap.dedent(text))
    return path


@pytest.fixture
def child(tmp_path):
    """The child file's path (its base is written next to it under _base_/)."""
    write(tmp_path, '_base_/edsr.yml', BASE)
    return write(tmp_path, 'child.yml', CHILD)


def error_of(path, overrides=(), purpose='train'):
    with pytest.raises(OptionError) as info:
        read_options(path, overrides, purpose=purpose)
    return info.value


# -- merging -------------------------------------------------------------
def test_child_validates_with_its_base(child):
    opt = read_options(child)
    assert opt['network_g'] == {'type': 'EDSR', 'num_feat': 8, 'num_block': 1, 'upscale': 2}
    assert opt['datasets']['train']['scale'] == 2  # scale propagated after the merge
    assert '_base_' not in opt and opt['_source'] == child


def test_merge_order_later_bases_then_the_file_win(tmp_path):
    write(tmp_path, 'a.yml', 'name: a\nscale: 2\nval: {val_freq: 1, save_img: true}\n')
    write(tmp_path, 'b.yml', 'name: b\nval: {val_freq: 2}\n')
    path = write(tmp_path, 'c.yml', '_base_: [a.yml, b.yml]\nscale: 3\n')
    opt, origins = load_option_file(path)
    assert opt == {'name': 'b', 'scale': 3, 'val': {'val_freq': 2, 'save_img': True}}
    a, b = osp.join(str(tmp_path), 'a.yml'), osp.join(str(tmp_path), 'b.yml')
    assert origins['name'] == b and origins['scale'] == path
    assert origins['val.val_freq'] == b and origins['val.save_img'] == a


def test_lists_are_replaced_not_merged(tmp_path):
    write(tmp_path, 'a.yml', 'x: {milestones: [1, 2, 3], keep: [7]}\n')
    path = write(tmp_path, 'c.yml', '_base_: a.yml\nx: {milestones: [9]}\n')
    assert load_option_file(path)[0] == {'x': {'milestones': [9], 'keep': [7]}}


def test_a_mapping_replaces_a_plain_value_and_back(tmp_path):
    write(tmp_path, 'a.yml', 'x: 1\ny: {z: 1}\n')
    path = write(tmp_path, 'c.yml', '_base_: a.yml\nx: {k: 2}\ny: null\n')
    assert load_option_file(path)[0] == {'x': {'k': 2}, 'y': None}


def test_delete_replaces_the_inherited_mapping(tmp_path):
    write(tmp_path, 'a.yml', 'net: {type: A, depth: 3, width: 8}\nother: {k: 1}\n')
    path = write(
        tmp_path,
        'c.yml',
        '_base_: a.yml\nnet: {_delete_: true, type: B}\nother: {_delete_: false, j: 2}\n',
    )
    opt, origins = load_option_file(path)
    assert opt == {'net': {'type': 'B'}, 'other': {'k': 1, 'j': 2}}
    assert 'net.depth' not in origins and origins['net.type'] == path


def test_nested_bases_and_paths_relative_to_the_naming_file(tmp_path, monkeypatch):
    write(tmp_path, 'common/root.yml', 'a: 1\nb: 1\nc: 1\n')
    write(tmp_path, 'common/mid/middle.yml', '_base_: ../root.yml\nb: 2\nc: 2\n')
    path = write(tmp_path, 'files/leaf.yml', '_base_: ../common/mid/middle.yml\nc: 3\n')
    monkeypatch.chdir(tmp_path / 'files')  # the working directory plays no part
    opt, origins = load_option_file(path)
    assert opt == {'a': 1, 'b': 2, 'c': 3}
    assert origins['a'] == osp.join(str(tmp_path), 'common', 'root.yml')
    assert origins['b'] == osp.join(str(tmp_path), 'common', 'mid', 'middle.yml')


def test_relative_opened_path_names_bases_relative_too(child, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, origins = load_option_file('child.yml')
    assert origins['train.total_iter'] == osp.join('_base_', 'edsr.yml')


# -- errors --------------------------------------------------------------
def test_error_names_the_base_file_that_wrote_the_bad_key(child, tmp_path):
    write(tmp_path, '_base_/edsr.yml', BASE.replace('total_iter: 6', 'totla_iter: 6'))
    err = error_of(child)
    base = osp.join(str(tmp_path), '_base_', 'edsr.yml')
    lines = str(err).splitlines()
    assert lines[0] == f'2 problem(s) in option file {child}:'
    assert (
        f"  {base}: train.totla_iter: unknown key. Did you mean 'total_iter' or 'warmup_iter'?"
        in lines
    )
    # a missing key is charged to the file that wrote the section it belongs in
    assert err.files[err.problems.index('train.total_iter: required key is missing')] == base


def test_error_in_the_child_names_the_child(child, tmp_path):
    write(tmp_path, 'child.yml', CHILD + 'network_g: {num_feats: 4}\n')
    err = error_of(child)
    assert err.files == [child] and 'network_g.num_feats: unknown argument' in err.problems[0]


def test_set_applies_after_merging_and_is_named(child, tmp_path):
    opt = read_options(child, ['train.total_iter=9', 'train.scheduler.milestones=[4]'])
    assert opt['train']['total_iter'] == 9 and opt['train']['scheduler']['milestones'] == [4]
    # a --set value can fix a base's mistake, and its own mistakes are named as --set's
    write(tmp_path, '_base_/edsr.yml', BASE.replace('val_freq: 3', 'val_freq: often'))
    assert error_of(child).files == [osp.join(str(tmp_path), '_base_', 'edsr.yml')]
    read_options(child, ['val.val_freq=3'])
    err = error_of(child, ['val.val_freq=3', 'train.total_iter=x'])
    assert err.files == ['--set'] and err.problems == [
        "train.total_iter: expected int, got str 'x'"
    ]


def test_cycle_is_refused_naming_the_files(tmp_path):
    a = write(tmp_path, 'a.yml', '_base_: b.yml\nname: a\n')
    b = osp.join(str(tmp_path), 'b.yml')
    write(tmp_path, 'b.yml', '_base_: [a.yml]\n')
    with pytest.raises(OptionError) as info:
        load_option_file(a)
    assert str(info.value) == (f'{b}: _base_: the files inherit from each other: {a} -> {b} -> {a}')


def test_a_file_inheriting_itself(tmp_path):
    a = write(tmp_path, 'a.yml', '_base_: ./a.yml\n')
    with pytest.raises(OptionError) as info:
        load_option_file(a)
    assert str(info.value) == f'{a}: _base_: the files inherit from each other: {a} -> {a}'


def test_missing_base_names_file_and_path(tmp_path):
    path = write(tmp_path, 'c.yml', '_base_: [_base_/nope.yml]\nname: c\n')
    with pytest.raises(OptionError) as info:
        read_options(path)
    looked = osp.join(str(tmp_path), '_base_', 'nope.yml')
    assert str(info.value) == f"{path}: _base_: '_base_/nope.yml' not found (looked for {looked})"


@pytest.mark.parametrize(
    'value, shown',
    [('5', 'int 5'), ('{a: 1}', "dict {'a': 1}"), ('[a.yml, 3]', "list ['a.yml', 3]")],
)
def test_base_of_the_wrong_type(tmp_path, value, shown):
    path = write(tmp_path, 'c.yml', f'_base_: {value}\n')
    with pytest.raises(OptionError) as info:
        load_option_file(path)
    assert str(info.value) == (
        f'{path}: _base_: expected a file path or a list of file paths, got {shown}'
    )


def test_base_that_is_not_a_mapping(tmp_path):
    base = write(tmp_path, 'a.yml', '- 1\n- 2\n')
    path = write(tmp_path, 'c.yml', '_base_: a.yml\n')
    with pytest.raises(OptionError) as info:
        load_option_file(path)
    assert str(info.value) == (f'{base}: the top level must be a mapping of option keys, got list')


def test_delete_not_a_bool(tmp_path):
    write(tmp_path, 'a.yml', 'net: {type: A}\n')
    path = write(tmp_path, 'c.yml', '_base_: a.yml\nnet: {_delete_: "yes", type: B}\n')
    with pytest.raises(OptionError) as info:
        load_option_file(path)
    assert str(info.value) == f"{path}: net._delete_: expected true or false, got str 'yes'"


def test_base_keys_are_only_top_level(child, tmp_path):
    write(tmp_path, 'child.yml', CHILD + 'val: {_base_: x.yml}\n')
    assert 'val._base_: unknown key' in str(error_of(child))


def test_custom_imports_of_a_base_are_found_next_to_it(tmp_path, monkeypatch):
    """A module that a base names is looked for in the base's folder."""
    import sys

    monkeypatch.setattr(sys, 'path', list(sys.path))
    write(tmp_path, '_base_/edsr.yml', BASE + 'custom_imports: [inherit_probe_mod]\n')
    write(tmp_path, '_base_/inherit_probe_mod.py', 'LOADED = True\n')
    path = write(tmp_path, 'child.yml', CHILD)
    monkeypatch.chdir(tmp_path)
    try:
        read_options(path)
        assert sys.modules['inherit_probe_mod'].LOADED
    finally:
        sys.modules.pop('inherit_probe_mod', None)


# -- the shipped files that became deltas on a base -------------------------
with open(FIXTURE, encoding='utf-8') as _f:
    BEFORE = json.load(_f)


@pytest.mark.parametrize('path', sorted(BEFORE))
def test_rewritten_file_merges_to_its_former_content(path):
    """``tests/config/fixtures/merged_options.json`` holds each file as it was written
    before it inherited (``load_yaml_file`` of the old file, committed with the
    rewrite): the merge must give exactly that, value types included."""
    opt, origins = load_option_file(osp.join(REPO_ROOT, path))
    assert json.dumps(opt, sort_keys=True) == json.dumps(BEFORE[path], sort_keys=True)
    assert len(set(origins.values())) > 1, 'expected the file to inherit from a base'


def test_a_chain_of_too_many_bases_is_one_line(tmp_path):
    """1000 files each inheriting the next would end in a RecursionError."""
    for i in range(1000):
        write(tmp_path, f'f{i}.yml', f'_base_: f{i + 1}.yml\n' if i < 999 else 'name: x\n')
    first = osp.join(str(tmp_path), 'f0.yml')
    with pytest.raises(OptionError) as info:
        load_option_file(first)
    assert str(info.value).startswith(f'{first}: _base_: more than 32 files inherit')
    assert '\n' not in str(info.value)
