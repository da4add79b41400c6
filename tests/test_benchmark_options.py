"""Every benchmark option file runs, on a tiny stand-in of its data layout.

For each file of ``options/test/benchmarks/``, the test writes a few tiny frames in
the folders the file names (relative to the working directory, so ``tmp_path``
stands in for the repository root), runs ``tools/test.py`` on it with the file's
bicubic network, and checks that ``metrics.json`` has every set with PSNR and SSIM
and, for video sets, that the set value is the mean over clips. Then the other LR
source the file documents (on-the-fly vs files) must give the same numbers:
LR files written with the same degradation as the on-the-fly one.

The protocol table of ``docs/benchmarks.md`` is checked against the files too
(channel, crop, degradation, LR source per option file), so the docs cannot drift.
"""

import glob
import json
import os
import os.path as osp
import re
import shutil

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT

from basicattn.config.options import load_option_file
from basicattn.data.degradation_transform import build_degradation
from basicattn.data.video_clips import CLIP_PRESETS
from basicattn.utils.img_util import imwrite

BENCHMARKS = osp.join(REPO_ROOT, 'options', 'test', 'benchmarks')
FILES = sorted(osp.basename(p) for p in glob.glob(osp.join(BENCHMARKS, '*.yml')))
DOC = osp.join(REPO_ROOT, 'docs', 'benchmarks.md')
FRAMES = 7  # the files' num_frame: a clip needs at least that many frames
SIDE = 8  # LR side of the stand-in images (HR: SIDE * scale)
CLIPS = ('calendar', 'walk')  # stand-in clips of the sets that are scanned


def _tool_module(name):
    """``tests/tools/conftest.py``'s ``tool_module`` (that conftest is not on this path)."""
    import importlib.util

    path = osp.join(REPO_ROOT, 'tests', 'tools', 'conftest.py')
    spec = importlib.util.spec_from_file_location('_tools_conftest', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tool_module(name)


def load(name):
    opt, _ = load_option_file(osp.join(BENCHMARKS, name))
    return opt


def test_there_are_the_benchmark_files():
    expected = {f'image_x{s}.yml' for s in (2, 3, 4)} | {
        'vid4_bi_x4.yml',
        'vid4_bdduf_x4.yml',
        'reds4_x4.yml',
        'vimeo90k_t_bi_x4.yml',
        'vimeo90k_t_bdduf_x4.yml',
        'vimeo90k_t_mana_x4.yml',
        'vimeo90k_motion_x4.yml',
        'udm10_bdduf_x4.yml',
    }
    assert set(FILES) == expected
    for s in (2, 3, 4):
        sets = [b['name'] for b in load(f'image_x{s}.yml')['datasets'].values()]
        assert sets == ['Set5', 'Set14', 'B100', 'Urban100', 'Manga109']


def _write_hr(folder, names, hr_side, rng):
    """Smooth random HR images (so that PSNR is finite and not trivial)."""
    import cv2

    images = {}
    for name in names:
        img = (rng.random((hr_side, hr_side, 3)) * 255).astype(np.uint8)
        img = cv2.GaussianBlur(img, (5, 5), 1.5)
        imwrite(osp.join(folder, name + '.png'), img)
        images[name] = img
    return images


def _write_lr(folder, images, degradation, scale):
    deg = build_degradation(degradation, scale)
    for name, img in images.items():
        imwrite(osp.join(folder, name + '.png'), deg.degrade(img))


def _keys(block):
    """The image keys (``clip/frame`` or ``name``) of one set's stand-in."""
    if block['type'] == 'PairedImageDataset':
        return ['baby', 'bird']
    if block['type'] == 'VimeoSeptupletDataset':
        return [f'{c}/im{i}' for c in ('00001/0001', '00002/0003') for i in range(1, 8)]
    clips = CLIP_PRESETS.get(block.get('clips'), CLIPS)
    return [f'{c}/{i:08d}' for c in clips for i in range(FRAMES)]


def build_stand_in(root, opt, lr_source):
    """Write every set's GT (and LR files when ``lr_source`` is a folder's key)."""
    rng = np.random.default_rng(0)
    scale = opt['scale']
    for block in opt['datasets'].values():
        keys = _keys(block)
        images = _write_hr(osp.join(root, block['dataroot_gt']), keys, SIDE * scale, rng)
        if block.get('meta_info_file'):
            clips = dict.fromkeys(k.rsplit('/', 1)[0] for k in keys)
            path = osp.join(root, block['meta_info_file'])
            os.makedirs(osp.dirname(path), exist_ok=True)
            with open(path, 'w', encoding='utf-8') as f:
                f.write(''.join(f'{c}\n' for c in clips))
        lq = block.get('dataroot_lq') or lr_source.get(block['name'])
        if lq:
            _write_lr(osp.join(root, lq), images, block.get('degradation', 'BI'), scale)


def other_lr_source(opt):
    """The documented switch of each set: ``{set: (override, LR folder to write)}``."""
    switch = {}
    for key, block in opt['datasets'].items():
        if block.get('dataroot_lq'):
            switch[block['name']] = (f'datasets.{key}.dataroot_lq=null', None)
        else:
            folder = osp.join(osp.dirname(block['dataroot_gt'].rstrip('/')), 'BDx4')
            switch[block['name']] = (f'datasets.{key}.dataroot_lq={folder}', folder)
    return switch


def lpips_overrides(opt, folder):
    """``--set`` items giving an LPIPS metric weight files of the published layouts.

    The stand-in run checks that the file runs; the files hold the default
    initialisation of :class:`~basicattn.metrics.lpips_net.LPIPSNet` (heads made
    non-negative), so the
    LPIPS value itself means nothing here (tests/metrics/test_lpips_*.py check it).
    """
    names = [k for k, m in opt['val']['metrics'].items() if m['type'] == 'LPIPS']
    if not names:
        return []
    from basicattn.metrics.lpips_net import LPIPSNet

    net = LPIPSNet('alex')
    torch.save(net.backbone_state_dict(), osp.join(folder, 'lpips_backbone.pth'))
    heads = {k: v.abs() for k, v in net.head_state_dict().items()}  # >= 0 as published
    torch.save(heads, osp.join(folder, 'lpips_heads.pth'))
    items = []
    for name in names:
        items += [
            f'val.metrics.{name}.backbone_path={folder}/lpips_backbone.pth',
            f'val.metrics.{name}.head_path={folder}/lpips_heads.pth',
        ]
    return items


def run_test(tool, path, root, tag, overrides=(), extra=()):
    """tools/test.py on ``path``; the Bicubic network unless ``extra`` gives a --checkpoint."""
    run = f'{osp.splitext(osp.basename(path))[0]}_{tag}'  # one mmengine instance name per run
    args = ['-opt', path, *extra, '--set', f'path.experiments_root={root}/results/{tag}']
    if '--checkpoint' not in extra:
        args += ['--set', 'network_g.type=Bicubic']
    args += ['--set', f'name={run}']
    for item in overrides:
        args += ['--set', item]
    assert tool.main(args) == 0
    with open(osp.join(root, 'results', tag, 'metrics.json'), encoding='utf-8') as f:
        record = json.load(f)
    per_clip = osp.join(root, 'results', tag, 'metrics_per_clip.json')
    clips = None
    if osp.isfile(per_clip):
        with open(per_clip, encoding='utf-8') as f:
            clips = json.load(f)
    return record['metrics'], clips


@pytest.fixture(scope='module')
def test_tool():
    return _tool_module('test')


@pytest.mark.parametrize('name', FILES)
def test_benchmark_file_runs_on_a_stand_in(name, test_tool, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    path = osp.join(BENCHMARKS, name)
    opt = load(name)
    switch = other_lr_source(opt)
    build_stand_in(str(tmp_path), opt, {s: f for s, (_, f) in switch.items() if f})
    lpips = lpips_overrides(opt, tmp_path)
    metrics, clips = run_test(test_tool, path, str(tmp_path), 'default', lpips)
    sets = [b['name'] for b in opt['datasets'].values()]
    assert list(metrics) == sets
    # the keys name the protocol's channel and crop: psnr_y_crop4, ssim_rgb_crop0 ...
    psnr_cfg = opt['val']['metrics']['psnr']
    space = 'y' if psnr_cfg['test_y_channel'] else 'rgb'
    psnr, ssim = (f'{m}_{space}_crop{psnr_cfg["crop_border"]}' for m in ('psnr', 'ssim'))
    for set_name in sets:
        values = metrics[set_name]
        assert set(values) == {psnr, ssim} | ({'lpips_alex_crop0'} if lpips else set())
        if lpips:  # weights of the right layout only: the value is not checked
            assert values['lpips_alex_crop0'] >= 0
        assert 15 < values[psnr] < 60 and 0 < values[ssim] < 1, (set_name, values)
        if opt['model_type'] == 'VideoSRModel':  # the set value is the mean over clips
            per_clip = clips[set_name]
            assert len(per_clip) >= 2
            mean = np.mean([c[psnr] for c in per_clip.values()])
            assert values[psnr] == pytest.approx(mean, rel=1e-9)
    other_lr = [o for o, _ in switch.values()]
    other, _ = run_test(test_tool, path, str(tmp_path), 'other', other_lr + lpips)
    for set_name in sets:
        for metric, value in metrics[set_name].items():
            assert other[set_name][metric] == pytest.approx(value, abs=1e-9), (set_name, metric)
    capsys.readouterr()


def test_checkpoint_names_the_network(test_tool, tmp_path, monkeypatch, capsys):
    """``--checkpoint W`` alone: the network the checkpoint records is tested."""
    from basicattn.archs.build import build_network
    from basicattn.checkpoint.state import save_weights_checkpoint

    monkeypatch.chdir(tmp_path)
    opt = load('image_x2.yml')
    build_stand_in(str(tmp_path), opt, {})
    arch = dict(type='EDSR', num_feat=4, num_block=1, upscale=2)
    torch.manual_seed(0)
    net = build_network(arch)
    weights = str(tmp_path / 'edsr_tiny.pth')
    save_weights_checkpoint(weights, net.state_dict(), dict(arch=arch, scale=2))
    path = osp.join(BENCHMARKS, 'image_x2.yml')
    bicubic, _ = run_test(test_tool, path, str(tmp_path), 'bicubic')
    edsr, _ = run_test(test_tool, path, str(tmp_path), 'edsr', [], ['--checkpoint', weights])
    key = 'psnr_y_crop2'
    assert edsr['Set5'][key] != pytest.approx(bicubic['Set5'][key], abs=0.01)
    with open(tmp_path / 'results' / 'edsr' / 'metrics.json', encoding='utf-8') as f:
        assert json.load(f)['checkpoint'] == weights
    capsys.readouterr()


#: Set5 bicubic, Y, crop = scale: the EDSR / RCAN tables (PSNR, SSIM).
SET5_BICUBIC = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}


@pytest.mark.slow
@pytest.mark.parametrize('scale', [2, 3, 4])
def test_set5_bicubic_row(scale, test_tool, tmp_path, monkeypatch, capsys):
    """image_x<s>.yml on the real Set5 gives the published Bicubic row (to 0.03 dB)."""
    data = os.environ.get('BASICATTN_TESTDATA') or osp.join(REPO_ROOT, '..', 'shared', 'data')
    set5 = osp.join(data, 'Set5')
    if not osp.isdir(osp.join(set5, f'X{scale}', 'HR')):
        pytest.skip(f'no Set5 test data under {data} (set BASICATTN_TESTDATA)')
    monkeypatch.chdir(tmp_path)
    name = f'image_x{scale}.yml'
    opt = load(name)
    build_stand_in(str(tmp_path), opt, {})  # the four other sets: tiny stand-ins
    os.symlink(osp.abspath(set5), tmp_path / 'datasets' / 'Set5_real')
    real = 'datasets/Set5_real'
    metrics, _ = run_test(
        test_tool,
        osp.join(BENCHMARKS, name),
        str(tmp_path),
        'set5',
        [
            f'datasets.test_set5.dataroot_gt={real}/X{scale}/HR',
            f'datasets.test_set5.dataroot_lq={real}/X{scale}/LR',
        ],
    )
    psnr, ssim = SET5_BICUBIC[scale]
    got = metrics['Set5']
    assert got[f'psnr_y_crop{scale}'] == pytest.approx(psnr, abs=0.03)
    assert got[f'ssim_y_crop{scale}'] == pytest.approx(ssim, abs=0.0015)
    capsys.readouterr()


# -- docs/benchmarks.md ------------------------------------------------------
def protocol_rows():
    """``{option file: {column: cell}}`` of the protocol table of docs/benchmarks.md."""
    with open(DOC, encoding='utf-8') as f:
        text = f.read()
    match = re.search(r'^## Protocols\n(.*?)(?=^## )', text, re.S | re.M)
    assert match, 'docs/benchmarks.md has no "## Protocols" section'
    lines = [line for line in match.group(1).splitlines() if line.startswith('|')]
    header = [c.strip().lower() for c in lines[0].strip('|').split('|')]
    rows = {}
    for line in lines[2:]:
        cells = dict(zip(header, (c.strip() for c in line.strip('|').split('|'))))
        found = re.search(r'benchmarks/([a-z0-9_]+\.yml)', cells['option file'])
        rows.setdefault(found.group(1), []).append(cells)
    return rows


def test_docs_protocol_table_matches_the_files():
    rows = protocol_rows()
    assert set(rows) == set(FILES)
    for name, cells_of_sets in rows.items():
        opt = load(name)
        blocks = {b['name']: b for b in opt['datasets'].values()}
        psnr = opt['val']['metrics']['psnr']
        for cells in cells_of_sets:
            sets = [s.strip() for s in cells['set'].split(',')]
            assert set(sets) <= set(blocks), (name, sets)
            for set_name in sets:
                block = blocks[set_name]
                channel = 'Y' if psnr['test_y_channel'] else 'RGB'
                assert cells['channel'] == channel, name
                assert cells['crop'] == str(psnr['crop_border']), name
                degradation = block.get('degradation', 'BI')
                assert cells['degradation'] == degradation, name
                lr = 'on the fly'
                if block.get('dataroot_lq'):
                    lr = block['dataroot_lq']
                    if len(sets) > 1:
                        lr = lr.replace(f'/{set_name}/', '/<Set>/')
                    lr = f'`{lr}`'
                assert cells['lr (default)'].startswith(lr), (name, cells['lr (default)'])
    assert os.path.isfile(DOC)


def test_a_set_written_as_null_is_left_out(test_tool, tmp_path, monkeypatch, capsys):
    """Someone with Set5 only runs image_x2.yml with the other sets set to null."""
    monkeypatch.chdir(tmp_path)
    opt = load('image_x2.yml')
    build_stand_in(str(tmp_path), opt, {})
    others = [k for k in opt['datasets'] if k != 'test_set5']
    for key in others:  # their folders are gone: they must not be looked at
        shutil.rmtree(tmp_path / opt['datasets'][key]['dataroot_gt'])
    path = osp.join(BENCHMARKS, 'image_x2.yml')
    metrics, _ = run_test(
        test_tool, path, str(tmp_path), 'set5', [f'datasets.{k}=null' for k in others]
    )
    assert list(metrics) == ['Set5']
    capsys.readouterr()
