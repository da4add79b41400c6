"""tools/compare.py: figures from result folders (Set5, a Vimeo clip) and one-line errors."""

import os
import os.path as osp
import re
import shutil

import numpy as np
import pytest
from conftest import tool_module

from basicattn.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from basicattn.utils.img_util import imread, imwrite
from basicattn.utils.matlab_imresize import imresize
from basicattn.visualization.comparison_figure import LABEL_HEIGHT
from basicattn.visualization.image_panels import GAP

DATA = os.environ.get('BASICATTN_TESTDATA') or osp.join(
    osp.dirname(__file__), '..', '..', '..', 'shared', 'data'
)
SET5_X2 = osp.join(DATA, 'Set5', 'X2')
VIMEO = osp.join(DATA, 'vimeo90k_sample', 'sequences')
CLIP = '00001/0001'


@pytest.fixture(scope='module')
def compare():
    return tool_module('compare')


def _run(compare, capsys, *args):
    code = compare.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _bicubic(lr, scale):
    return np.clip(np.round(imresize(lr, scale)), 0, 255).astype(np.uint8)


def _upsample_folder(lr_dir, out_dir, scale, name=lambda key: key, nearest=False):
    """Write every LR image of ``lr_dir`` upsampled (MATLAB bicubic or nearest) to ``out_dir``."""
    for file in sorted(os.listdir(lr_dir)):
        lr = imread(osp.join(lr_dir, file))
        sr = lr.repeat(scale, 0).repeat(scale, 1) if nearest else _bicubic(lr, scale)
        imwrite(osp.join(out_dir, name(osp.splitext(file)[0]) + '.png'), sr)


def _error_line(code, err):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    return lines[0]


@pytest.fixture
def tiny(tmp_path):
    """Synthetic GT (2 images 32x24), x2 LR and one method, for the error cases."""
    rng = np.random.default_rng(0)
    for name in ('a', 'b'):
        gt = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
        imwrite(tmp_path / 'gt' / f'{name}.png', gt)
        imwrite(tmp_path / 'lr' / f'{name}.png', gt[::2, ::2])
        imwrite(tmp_path / 'sr' / f'{name}.png', gt[::2, ::2].repeat(2, 0).repeat(2, 1))
    return tmp_path


def _tiny_args(root, *extra):
    return (
        ['--gt', root / 'gt', '--lr', root / 'lr', '--sr', f'M={root / "sr"}', '--out']
        + [root / 'out']
        + list(extra)
    )


def test_tiny_set_gives_one_figure_per_image(compare, capsys, tiny):
    code, out, _ = _run(compare, capsys, *_tiny_args(tiny, '--box', 2, 4, 8, 6, '--zoom', 2))
    assert code == 0 and out.strip().splitlines()[-1] == str(tiny / 'out')
    for name in ('a', 'b'):
        fig = imread(tiny / 'out' / f'{name}.png')
        tile_w, tile_h = 16, 12 + LABEL_HEIGHT  # GT, LR, M: two rows of two
        assert fig.shape == (
            max(24 + LABEL_HEIGHT, 2 * tile_h + GAP),
            32 + GAP + 2 * tile_w + GAP,
            3,
        )
    assert sorted(os.listdir(tiny / 'out')) == ['a.png', 'b.png']  # no temporary files left


@pytest.mark.parametrize(
    'change, args, message',
    [
        (None, ['--gt', 'nowhere'], r'--gt folder not found: nowhere'),
        (None, ['--names', 'c'], r'--names c: no image of that name in .*gt \(a, b\)'),
        (None, ['--box', 30, 0, 8, 8], r'--box for .*a\.png: box x=30 y=0 w=8 h=8 does not fit'),
        ('drop_b', [], r"--sr M folder .*sr has no image for 'b'"),
        (
            'crop_sr',
            [],
            r'sr/a\.png \(--sr M\) is 31x24 \(WxH\), but the GT image .*a\.png is 32x24',
        ),
        ('crop_lr', [], r'lr/a\.png \(--lr\) is 15x12 \(WxH\); the GT image .*a\.png is 32x24'),
        ('no_match', [], r'no image of the --sr folders has a name of the --gt folder'),
        ('collide', [], r"--gt: .*gt/x/y\.png and .*gt/x_y\.png have the same result name 'x_y'"),
    ],
)
def test_user_mistakes_give_one_error_line(compare, capsys, tiny, change, args, message):
    if change == 'drop_b':
        shutil.copytree(tiny / 'sr', tiny / 'sr2')  # N has both images, M only a
        os.remove(tiny / 'sr' / 'b.png')
        args = ['--sr', f'N={tiny / "sr2"}']
    elif change == 'crop_sr':
        imwrite(tiny / 'sr' / 'a.png', imread(tiny / 'sr' / 'a.png')[:, :31])
    elif change == 'crop_lr':
        imwrite(tiny / 'lr' / 'a.png', imread(tiny / 'lr' / 'a.png')[:, :15])
    elif change == 'no_match':
        for name in ('a', 'b'):
            os.rename(tiny / 'sr' / f'{name}.png', tiny / 'sr' / f'other_{name}.png')
    elif change == 'collide':
        imwrite(tiny / 'gt' / 'x' / 'y.png', imread(tiny / 'gt' / 'a.png'))
        imwrite(tiny / 'gt' / 'x_y.png', imread(tiny / 'gt' / 'a.png'))
    argv = _tiny_args(tiny) + args
    if args[:1] == ['--gt']:
        argv = args + argv[2:]
    code, _, err = _run(compare, capsys, *argv)
    assert re.search(message, _error_line(code, err)), err
    assert not osp.exists(tiny / 'out')  # each case fails before the first figure is written


def test_an_error_on_a_later_image_leaves_out_dir_as_it_was(compare, capsys, tiny):
    small = np.zeros((24, 24, 3), np.uint8)  # b: narrower than the box's right edge
    imwrite(tiny / 'gt' / 'b.png', small)
    imwrite(tiny / 'lr' / 'b.png', small[::2, ::2])
    imwrite(tiny / 'sr' / 'b.png', small)
    old = np.full((5, 5, 3), 7, np.uint8)
    imwrite(tiny / 'out' / 'a.png', old)
    code, _, err = _run(compare, capsys, *_tiny_args(tiny, '--box', 26, 0, 4, 4))
    assert re.search(r'--box for .*b\.png: box x=26 .* does not fit in the 24x24', err)
    assert code == 2 and os.listdir(tiny / 'out') == ['a.png']  # nothing half-done
    assert np.array_equal(imread(tiny / 'out' / 'a.png'), old)
    code, _, _ = _run(compare, capsys, *_tiny_args(tiny, '--box', 0, 0, 4, 4))
    assert code == 0 and sorted(os.listdir(tiny / 'out')) == ['a.png', 'b.png']
    assert imread(tiny / 'out' / 'a.png').shape != old.shape  # replaced


def test_bad_arguments_are_refused_by_the_parser(compare, capsys, tiny):
    for extra in (['--zoom', 0], ['--sr', 'GT=x'], ['--sr', 'no-equals-sign']):
        with pytest.raises(SystemExit) as exit_info:
            compare.main([str(a) for a in _tiny_args(tiny) + extra])
        assert exit_info.value.code == 2
        assert 'error:' in capsys.readouterr().err


def _need(path):
    if not osp.isdir(path):
        pytest.skip(f'shared test data not found: {path} (set BASICATTN_TESTDATA)')


@pytest.mark.slow
def test_set5_x2_figures_with_bicubic_and_validation_named_results(compare, capsys, tmp_path):
    _need(SET5_X2)
    hr, lr = osp.join(SET5_X2, 'HR'), osp.join(SET5_X2, 'LR')
    _upsample_folder(lr, tmp_path / 'bicubic', 2)
    # a second method named as validation images are (<key>_<iter>.png)
    _upsample_folder(lr, tmp_path / 'nearest', 2, name=lambda k: f'{k}_1000', nearest=True)
    code, out, _ = _run(
        compare,
        capsys,
        *['--gt', hr, '--lr', lr, '--sr', f'Bicubic={tmp_path / "bicubic"}'],
        *['--sr', f'Nearest={tmp_path / "nearest"}', '--out', tmp_path / 'out'],
    )
    assert code == 0, out
    assert sorted(os.listdir(tmp_path / 'out')) == [f'img_00{i}.png' for i in range(1, 6)]
    gt = imread(osp.join(hr, 'img_003.png'))
    sr = imread(tmp_path / 'bicubic' / 'img_003.png')
    psnr = calculate_psnr(sr, gt, crop_border=2, test_y_channel=True)
    ssim = calculate_ssim(sr, gt, crop_border=2, test_y_channel=True)
    line = next(x for x in out.splitlines() if x.startswith(str(tmp_path / 'out' / 'img_003')))
    assert f'Bicubic {psnr:.2f}/{ssim:.4f}' in line
    # a chosen box and zoom: 4 tiles of 40 * 3 px in two rows beside the 256x256 frame
    code, out, _ = _run(
        compare,
        capsys,
        *['--gt', hr, '--lr', lr, '--sr', f'Bicubic={tmp_path / "bicubic"}', '--names'],
        *['img_003', '--sr', f'Nearest={tmp_path / "nearest"}', '--box', 100, 80, 40, 40],
        *['--zoom', 3, '--out', tmp_path / 'chosen'],
    )
    assert code == 0 and os.listdir(tmp_path / 'chosen') == ['img_003.png']
    fig = imread(tmp_path / 'chosen' / 'img_003.png')
    tile_h = 120 + LABEL_HEIGHT
    assert fig.shape == (max(256 + LABEL_HEIGHT, 2 * tile_h + GAP), 256 + GAP + 2 * 120 + GAP, 3)
    gt_tile = fig[:120, 256 + GAP : 256 + GAP + 120]
    assert np.array_equal(gt_tile, gt[80:120, 100:140].repeat(3, 0).repeat(3, 1))


@pytest.mark.slow
def test_vimeo_clip_strip_and_temporal_profile(compare, capsys, tmp_path):
    _need(osp.join(VIMEO, CLIP))
    from basicattn.data.degradation_transform import BIDegradation

    degradation = BIDegradation(scale=4)
    gts = []
    for t in range(1, 8):
        key = f'{CLIP}/im{t}'
        gt = imread(osp.join(VIMEO, key + '.png'))
        lr = degradation.degrade(gt)
        gts.append(gt)
        imwrite(tmp_path / 'lr' / f'{key}.png', lr)
        imwrite(tmp_path / 'bicubic' / f'{key.replace("/", "_")}.png', _bicubic(lr, 4))
    shutil.copytree(tmp_path / 'bicubic', tmp_path / 'copy')  # a second "method"
    clip_inputs = ['--video', '--gt', VIMEO, '--lr', tmp_path / 'lr']
    clip_inputs += ['--sr', f'Bicubic={tmp_path / "bicubic"}']
    code, out, err = _run(
        compare,
        capsys,
        *clip_inputs,
        *['--sr', f'Copy={tmp_path / "copy"}', '--box', 100, 60, 32, 32, '--zoom', 2],
        *['--row', 70, '--row-height', 4, '--out', tmp_path / 'out'],
    )
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / 'out')) == [
        '00001_0001_profile.png',
        '00001_0001_strip.png',
    ]
    strip = imread(tmp_path / 'out' / '00001_0001_strip.png')
    tile_w, tile_h = 64, 64 + LABEL_HEIGHT  # rows GT, LR, Bicubic, Copy; a column per frame
    grid_w, grid_h = 7 * tile_w + 6 * GAP, 4 * tile_h + 3 * GAP
    assert strip.shape == (max(256 + LABEL_HEIGHT, grid_h), 448 + GAP + grid_w, 3)
    assert np.array_equal(
        strip[:64, 448 + GAP : 448 + GAP + 64], gts[0][60:92, 100:132].repeat(2, 0).repeat(2, 1)
    )
    profile = imread(tmp_path / 'out' / '00001_0001_profile.png')
    band = 7 * 4 + LABEL_HEIGHT
    assert profile.shape == (max(256 + LABEL_HEIGHT, 4 * band + 3 * GAP), 448 + GAP + 448, 3)
    expected = np.stack([g[70] for g in gts]).repeat(4, axis=0)
    assert np.array_equal(profile[:28, 448 + GAP :], expected)
    # without --row the profile passes through the middle of the box
    code, out, err = _run(
        compare,
        capsys,
        *clip_inputs,
        *['--box', 100, 60, 32, 32, '--names', CLIP, '--out', tmp_path / 'default'],
    )
    assert code == 0 and 'row 76' in out, err
    code, _, err = _run(
        compare,
        capsys,
        *['--video', '--gt', VIMEO, '--sr', f'Bicubic={tmp_path / "bicubic"}', '--scale', 4],
        *['--row', 256, '--out', tmp_path / 'bad'],
    )
    assert '--row 256 is outside the frames' in _error_line(code, err)


def _lpips_weights_in_default_places(root, monkeypatch, net):
    """LPIPS weight files of the published layouts where the tool looks for them.

    Default initialisation (heads made non-negative): the values only have to
    agree with the metric's on the same files.
    """
    import torch

    from basicattn.metrics.lpips_net import LPIPSNet
    from basicattn.metrics.lpips_weights import BACKBONE_FILES

    model = LPIPSNet(net)
    hub = root / 'torch' / 'hub' / 'checkpoints'
    heads = root / 'site' / 'lpips' / 'weights' / 'v0.1'
    hub.mkdir(parents=True)
    heads.mkdir(parents=True)
    (root / 'site' / 'lpips' / '__init__.py').write_text('')
    torch.save(model.backbone_state_dict(), hub / BACKBONE_FILES[net])
    torch.save({k: v.abs() for k, v in model.head_state_dict().items()}, heads / f'{net}.pth')
    monkeypatch.setattr(torch.hub, '_hub_dir', None, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(root / 'torch'))
    monkeypatch.syspath_prepend(str(root / 'site'))


def test_lpips_is_printed_lower_is_better(compare, capsys, tiny, monkeypatch):
    import torch

    from basicattn.metrics.lpips_metric import LPIPS

    _lpips_weights_in_default_places(tiny, monkeypatch, 'vgg')
    code, out, _ = _run(compare, capsys, *_tiny_args(tiny, '--lpips', 'vgg'))
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith(str(tiny / 'out' / 'a.png')))
    found = re.search(r'M (\d+\.\d+)/(\d\.\d+) LPIPS↓ (\d\.\d+)$', line)
    assert found, line
    metric = LPIPS(net='vgg', crop_border=2)  # crop = scale, as the PSNR / SSIM labels

    def tensor(path):
        return torch.from_numpy(imread(path).astype(np.float32) / 255).permute(2, 0, 1)

    metric.process(
        None, [dict(pred=tensor(tiny / 'sr' / 'a.png'), gt=tensor(tiny / 'gt' / 'a.png'), key='a')]
    )
    assert float(found.group(3)) == pytest.approx(metric.results[0]['value'], abs=1e-4)


def test_lpips_without_its_weights_stops_before_any_figure(compare, capsys, tiny, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, '_hub_dir', None, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tiny / 'empty'))
    code, _, err = _run(compare, capsys, *_tiny_args(tiny, '--lpips', 'alex'))
    line = _error_line(code, err)
    assert 'alexnet-owt-7be5be79.pth' in line and str(tiny / 'empty') in line
    assert not (tiny / 'out').exists()
