"""tools/rank_motion.py: the shared Vimeo sample end to end, a clip list, one-line errors."""

import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from conftest import tool_module

DATA = os.environ.get('BASICATTN_TESTDATA') or osp.join(
    osp.dirname(__file__), '..', '..', '..', 'shared', 'data'
)
VIMEO = osp.join(DATA, 'vimeo90k_sample')


@pytest.fixture(scope='module')
def rank():
    return tool_module('rank_motion')


def moving_clip(folder, k, frames=3):
    rng = np.random.default_rng(k)
    big = cv2.GaussianBlur((rng.random((40, 48 + 2 * k, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    folder.mkdir(parents=True)
    for t in range(frames):
        cv2.imwrite(str(folder / f'{t:08d}.png'), big[:, t * k : t * k + 48])


def test_clip_list_and_tops(rank, tmp_path, capsys):
    for k in (0, 2, 4):
        moving_clip(tmp_path / 'GT' / f'clip_{k}', k)
    listed = tmp_path / 'list.txt'
    listed.write_text('clip_4\nclip_0\n')
    out = tmp_path / 'out'
    assert (
        rank.main(
            [
                str(tmp_path / 'GT'),
                '--out',
                str(out),
                '--clips',
                str(listed),
                '--top',
                '50',
                '--top',
                '100',
                '--preset',
                'fast',
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[-1] == str(out)
    motion = json.loads((out / 'motion.json').read_text())
    assert list(motion) == ['clip_4', 'clip_0']
    assert (out / 'top50.txt').read_text() == 'clip_4 3 (40,48,3)\n'
    assert (out / 'top100.txt').read_text() == 'clip_0 3 (40,48,3)\nclip_4 3 (40,48,3)\n'


@pytest.mark.parametrize(
    'argv, message',
    [
        (['{tmp}/none', '--out', '{tmp}/o'], 'none: not a folder'),
        (['{tmp}/GT', '--out', '{tmp}/o', '--clips', '{tmp}/l.txt'], 'l.txt: clip list not found'),
        (['{tmp}/one', '--out', '{tmp}/o'], '1 frame; a clip needs at least 2'),
    ],
)
def test_errors_are_one_line_and_write_nothing(rank, tmp_path, capsys, argv, message):
    moving_clip(tmp_path / 'GT' / 'a', 1)
    moving_clip(tmp_path / 'one' / 'a', 1, frames=1)
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert rank.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: ') and message in err[0], err
    assert not (tmp_path / 'o').exists()


@pytest.mark.slow
def test_the_shared_vimeo_sample_end_to_end(rank, tmp_path, capsys):
    """The 16 septuplets ranked (sequences/ found inside ROOT); the list reads as a dataset."""
    if not osp.isdir(osp.join(VIMEO, 'sequences')):
        pytest.skip(f'no Vimeo sample under {DATA} (set BASICATTN_TESTDATA)')
    out = tmp_path / 'motion'
    assert rank.main([VIMEO, '--out', str(out), '--top', '6', '25']) == 0
    capsys.readouterr()
    motion = json.loads((out / 'motion.json').read_text())
    assert len(motion) == 16
    values = list(motion.values())
    assert values == sorted(values, reverse=True)
    # DIS medium with OpenCV 4.x/5.x: the clips that move most and least (1 to 10 px/frame)
    assert list(motion)[:2] == ['00001/0005', '00001/0006']
    assert list(motion)[-2:] == ['00002/0008', '00002/0007']
    assert motion['00001/0005'] == pytest.approx(10.4, rel=0.05)
    assert motion['00002/0007'] == pytest.approx(0.89, rel=0.1)
    assert (out / 'top6.txt').read_text() == '00001/0005 7 (256,448,3)\n'
    top25 = (out / 'top25.txt').read_text().splitlines()
    assert [line.split()[0] for line in top25] == [
        '00001/0001',
        '00001/0002',
        '00001/0005',
        '00001/0006',
    ]

    from basicattn.data.video_vimeo_dataset import VimeoSeptupletDataset

    dataset = VimeoSeptupletDataset(
        dataroot_gt=osp.join(VIMEO, 'sequences'), meta_info_file=str(out / 'top25.txt')
    )
    assert dataset.clips == ['00001/0001', '00001/0002', '00001/0005', '00001/0006']
