"""tools/y4m_to_frames.py: Youku-VESR y4m videos -> GT/LQ frame folders, end to end
through tools/test.py with options/test/dasaa_youku_x4.yml; errors leave nothing."""

import json
import os
import os.path as osp

import numpy as np
import pytest
from conftest import REPO_ROOT, tool_module

from basicattn.data.y4m_io import write_y4m
from basicattn.utils.img_util import imread

y4m_to_frames = tool_module('y4m_to_frames')

TOL = 2  # BT.601 uint8 rounding, see tests/data/test_y4m_io.py


def tinted(num, h, w, seed):
    """Grey ramp + a colour per frame: constant chroma, so 4:2:0 loses nothing."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(30, 200, h * w).reshape(h, w, 1)
    return [np.clip(ramp + rng.integers(-25, 25, 3), 0, 255).astype(np.uint8) for _ in range(num)]


def youku_videos(folder, clips=('Youku_00000', 'Youku_00001'), frames=5, lr=(8, 8)):
    """``<clip>_h_GT.y4m`` (x4) and ``<clip>_l.y4m`` as the challenge names them."""
    made = {}
    for i, clip in enumerate(clips):
        hr = tinted(frames, lr[0] * 4, lr[1] * 4, seed=i)
        lq = tinted(frames, *lr, seed=100 + i)
        write_y4m(osp.join(folder, f'{clip}_h_GT.y4m'), hr, colorspace='420mpeg2')
        write_y4m(osp.join(folder, f'{clip}_l.y4m'), lq, colorspace='420mpeg2')
        made[clip] = (hr, lq)
    return made


def test_youku_names_give_gt_and_lq_folders(tmp_path, capsys):
    made = youku_videos(str(tmp_path / 'raw'))
    out = tmp_path / 'frames'
    assert y4m_to_frames.main([str(tmp_path / 'raw'), str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    for clip, (hr, lq) in made.items():
        for side, frames in (('GT', hr), ('LQ', lq)):
            names = sorted(os.listdir(out / side / clip))
            assert names == [f'{i:08d}.png' for i in range(5)]
            for name, original in zip(names, frames):
                img = imread(str(out / side / clip / name))
                assert np.abs(img.astype(int) - original.astype(int)).max() <= TOL


def test_other_names_and_max_frames(tmp_path):
    write_y4m(tmp_path / 'walk.y4m', tinted(4, 4, 6, 0))
    out = tmp_path / 'out'
    assert y4m_to_frames.main([str(tmp_path / 'walk.y4m'), str(out), '--max-frames', '2']) == 0
    assert sorted(os.listdir(out / 'walk')) == ['00000000.png', '00000001.png']


def test_existing_output_is_kept_and_bad_video_writes_nothing(tmp_path, capsys):
    youku_videos(str(tmp_path / 'raw'), clips=('Youku_00000',))
    out = tmp_path / 'frames'
    assert y4m_to_frames.main([str(tmp_path / 'raw'), str(out)]) == 0
    capsys.readouterr()
    assert y4m_to_frames.main([str(tmp_path / 'raw'), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: 2 frame folder(s) exist') and '--overwrite' in err
    # a truncated second video: nothing of the first reaches OUT_DIR
    bad = tmp_path / 'raw2'
    youku_videos(str(bad), clips=('Youku_00005',))
    path = bad / 'Youku_00005_l.y4m'
    path.write_bytes(path.read_bytes()[:-10])
    assert y4m_to_frames.main([str(bad), str(tmp_path / 'new')]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and 'Youku_00005_l.y4m: frame 4 is truncated' in err
    assert len(err.splitlines()) == 1
    assert not osp.exists(tmp_path / 'new')
    assert not [n for n in os.listdir(tmp_path) if n.startswith('.new')]


@pytest.mark.slow
def test_youku_y4m_end_to_end_through_the_test_tool(tmp_path, tool):
    """y4m -> frames -> tools/test.py -opt options/test/dasaa_youku_x4.yml (tiny DASAA)."""
    youku_videos(str(tmp_path / 'raw'))
    frames = tmp_path / 'Youku-VESR' / 'test'
    assert y4m_to_frames.main([str(tmp_path / 'raw'), str(frames)]) == 0
    out = tool(
        'tools/test.py',
        '-opt',
        osp.join(REPO_ROOT, 'options', 'test', 'dasaa_youku_x4.yml'),
        '--set',
        'network_g.num_feat=8',
        'network_g.num_rdb=1',
        'network_g.rdb_layers=2',
        'network_g.growth=4',
        'network_g.reduction=2',
        'network_g.pab_hidden=4',
        'network_g.attn_chunk=16',
        'path.pretrain_network_g=null',
        f'datasets.test_youku.dataroot_gt={frames}/GT',
        f'datasets.test_youku.dataroot_lq={frames}/LQ',
        'logger.use_tb_logger=false',
        f'path.experiments_root={tmp_path}/exp',
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.load(open(out.stdout.strip().splitlines()[-1]))
    youku = result['metrics']['Youku_VESR_test']
    psnr = [v for k, v in youku.items() if k.startswith('psnr')]
    assert psnr and all(np.isfinite(psnr)), youku
