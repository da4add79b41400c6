"""The LPIPS metric: properties of the distance, its key, crop and averaging, its errors.

The weights are the seeded random files of ``lpips_helpers.write_lpips_weights``
(the published files are not part of the repository); the properties checked
hold for any weights with non-negative heads. The same checks with the
published weights run when they are installed (``test_with_the_published_weights``).
"""

import os.path as osp

import cv2
import lpips_helpers
import numpy as np
import pytest
import torch

from basicattn.errors import CheckpointError
from basicattn.metrics.lpips_metric import LPIPS, lpips_distance, to_lpips_input
from basicattn.registry import METRICS
from basicattn.utils.tool_runner import run_tool

# fixtures of these tests, bound here: a conftest.py of this folder would shadow
# the module that `from conftest import REPO_ROOT` means in later test files
alex_weights = lpips_helpers.alex_weights
lpips_weights_writer = lpips_helpers.lpips_weights_writer


def textured(seed=0, size=(48, 56)):
    """A float tensor (3, H, W) in [0, 1] with edges and texture."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((*size, 3)).astype(np.float32), (0, 0), 1.0)
    img[:, size[1] // 2 :] += 0.4  # a vertical edge
    img[size[0] // 3 :, :, 1] *= 0.5
    return torch.from_numpy(np.clip(img, 0, 1)).permute(2, 0, 1).contiguous()


def blurred(img, sigma):
    arr = img.permute(1, 2, 0).numpy()
    return torch.from_numpy(cv2.GaussianBlur(arr, (0, 0), sigma)).permute(2, 0, 1).contiguous()


@pytest.fixture(scope='module')
def metric(alex_weights):
    backbone, heads = alex_weights
    return METRICS.build(dict(type='LPIPS', crop_border=2, backbone_path=backbone, head_path=heads))


def run(metric, pairs, clips=None):
    metric.results.clear()
    samples = [
        dict(pred=p, gt=g, key=f'img{i}', **({'clip': clips[i]} if clips else {}))
        for i, (p, g) in enumerate(pairs)
    ]
    metric.process(None, samples)
    return metric.compute_metrics(metric.results)


def check_properties(m):
    img = textured()
    other = textured(seed=1)
    assert lpips_distance(m.net, img, img, 2).item() == 0.0
    ab = lpips_distance(m.net, img, other, 2).item()
    ba = lpips_distance(m.net, other, img, 2).item()
    assert ab > 0
    assert ab == pytest.approx(ba, rel=1e-6)  # the same sums in another order
    values = [lpips_distance(m.net, blurred(img, s), img, 2).item() for s in (0.6, 1.2, 2.4, 4.8)]
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_self_zero_symmetric_and_growing_with_blur(metric):
    check_properties(metric)


def test_batch_and_per_image_agree(metric):
    preds = torch.stack([blurred(textured(s), 1.0 + s) for s in range(3)])
    gts = torch.stack([textured(s) for s in range(3)])
    batch = lpips_distance(metric.net, preds, gts, 2)
    single = torch.cat([lpips_distance(metric.net, p, g, 2) for p, g in zip(preds, gts)])
    # one convolution call over a batch vs three: float32 sums may differ in the last bits
    torch.testing.assert_close(batch, single, rtol=1e-5, atol=1e-7)
    result = run(metric, list(zip(preds, gts)))
    assert result['lpips_alex_crop2'] == pytest.approx(float(single.mean()), rel=1e-5)
    assert list(result['lpips_alex_crop2/per_image']) == ['img0', 'img1', 'img2']


def test_video_means_per_clip_first(metric):
    pairs = [(blurred(textured(s), 2.0), textured(s)) for s in range(3)]
    result = run(metric, pairs, clips=['a', 'a', 'b'])
    values = list(result['lpips_alex_crop2/per_image'].values())
    assert result['lpips_alex_crop2/per_clip'] == pytest.approx(
        {'a': (values[0] + values[1]) / 2, 'b': values[2]}
    )
    assert result['lpips_alex_crop2'] == pytest.approx(
        ((values[0] + values[1]) / 2 + values[2]) / 2
    )


def test_same_pixels_as_psnr(metric):
    """uint8 rounding and the crop: changes inside them do not change the value."""
    img = torch.round(textured() * 255) / 255
    noisy = img + 0.4 / 255  # rounds to the same uint8 levels
    assert lpips_distance(metric.net, noisy, img, 2).item() == 0.0
    border = img.clone()
    border[:, :2] = 0  # only the cropped rows differ
    assert lpips_distance(metric.net, border, img, 2).item() == 0.0
    assert lpips_distance(metric.net, border, img, 0).item() > 0
    x = to_lpips_input(torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1).expand(3, 2, 2))
    # 0.5 -> 128/255 -> 1/255 (float32 arithmetic)
    assert x[0, :, 0, 0].tolist() == pytest.approx([-1.0, 1.0 / 255, 1.0], abs=1e-6)


def test_key_names_net_and_crop_and_is_lower_better(alex_weights):
    from basicattn.metrics.metric_direction import best_rule, lower_is_better

    metric = LPIPS(crop_border=4, backbone_path=alex_weights[0], head_path=alex_weights[1])
    assert metric.name == 'lpips_alex_crop4'
    assert lower_is_better('Vimeo90K-Motion/lpips_alex_crop4')
    assert best_rule('Set5/lpips_vgg_crop2') == 'less'
    assert best_rule('Set5/psnr_y_crop2') == 'greater'


def test_too_small_after_the_crop(metric):
    img = torch.zeros(3, 34, 40)  # 30 a side after cropping 2: AlexNet needs 31
    with pytest.raises(ValueError, match="LPIPS: image 'img0': LPIPS \\(alex\\) needs"):
        run(metric, [(img, img)])


def test_missing_backbone_is_one_error_line_when_built(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setattr(torch.hub, '_hub_dir', None, raising=False)
    expected = osp.join(str(tmp_path / 'torch'), 'hub', 'checkpoints', 'alexnet-owt-7be5be79.pth')

    def build(argv):
        METRICS.build(dict(type='LPIPS', head_path=__file__))
        return 0

    assert run_tool(build, []) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith('error: LPIPS (net: alex): ')
    assert expected in err and 'put alexnet-owt-7be5be79.pth there' in err
    assert 'backbone_path' in err and 'docs/metrics.md' in err


def test_given_paths_that_are_not_files(alex_weights, tmp_path):
    with pytest.raises(CheckpointError, match='backbone_path .*nope.pth is not a file'):
        LPIPS(backbone_path=str(tmp_path / 'nope.pth'), head_path=alex_weights[1])
    with pytest.raises(CheckpointError, match='head_path .*h.pth is not a file'):
        LPIPS(backbone_path=alex_weights[0], head_path=str(tmp_path / 'h.pth'))


def test_a_file_of_the_wrong_layout(alex_weights, tmp_path):
    wrong = tmp_path / 'vgg_heads.pth'
    torch.save({f'lin{k}.model.1.weight': torch.zeros(1, 8, 1, 1) for k in range(5)}, wrong)
    with pytest.raises(CheckpointError, match=r'heads .*vgg_heads.pth: not the expected layout'):
        LPIPS(backbone_path=alex_weights[0], head_path=str(wrong))
    with pytest.raises(CheckpointError, match=r'backbone .*: not the expected layout.*AlexNet'):
        LPIPS(backbone_path=alex_weights[1], head_path=alex_weights[1])


@pytest.mark.slow
@pytest.mark.parametrize('net', ['alex', 'vgg'])
def test_with_the_published_weights(net):
    """The properties with the real files, where they are installed (never downloaded)."""
    from basicattn.metrics.lpips_weights import default_backbone_path, default_head_path

    backbone, heads = default_backbone_path(net), default_head_path(net)
    if not osp.isfile(backbone) or heads is None or not osp.isfile(heads):
        pytest.skip(f'published LPIPS weights of {net} not installed ({backbone}, lpips package)')
    check_properties(LPIPS(net=net, crop_border=2))


def test_test_tool_stops_before_creating_anything(tmp_path, monkeypatch, capsys, tiny_image_folder):
    """tools/test.py with LPIPS and no weights: one error line, no results folder."""
    import importlib.util
    import sys

    hr, lr = tiny_image_folder
    monkeypatch.setattr(torch.hub, '_hub_dir', None, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    options = tmp_path / 'lpips.yml'
    options.write_text(
        f'name: lpips_missing\nscale: 2\nnetwork_g: {{type: Bicubic}}\n'
        f'datasets:\n  test_tiny: {{name: Tiny, type: PairedImageDataset, '
        f'dataroot_gt: {hr}, dataroot_lq: {lr}}}\n'
        f'path: {{experiments_root: {tmp_path}/results}}\n'
        'val:\n  metrics:\n    psnr: {type: PSNR, crop_border: 2}\n'
        '    lpips: {type: LPIPS, crop_border: 2}\n'
    )
    tools = osp.join(osp.dirname(__file__), '..', '..', 'tools')
    sys.path.insert(0, tools)
    try:
        spec = importlib.util.spec_from_file_location(
            '_tool_test_lpips', osp.join(tools, 'test.py')
        )
        tool = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tool)
    finally:
        sys.path.pop(0)
    assert tool.main(['-opt', str(options)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: LPIPS (net: alex): '), err
    assert 'alexnet-owt-7be5be79.pth' in err[0]
    assert not (tmp_path / 'results').exists()
