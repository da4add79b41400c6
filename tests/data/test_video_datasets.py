"""Video datasets: Vimeo septuplets, REDS windows, whole test clips.

Tiny generated trees (12x16 GT frames, x2 LQ) keep every test fast; the
LMDB round trips through tools/create_lmdb.py are in
tests/tools/test_create_lmdb_video.py.
"""

import itertools
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from basicattn.data.degradation_transform import BDDegradation, DNDegradation
from basicattn.data.lmdb_builder import build_lmdb_from_folder
from basicattn.data.resumable_sampler import ResumableInfiniteSampler
from basicattn.data.video_reds_dataset import REDSClipDataset
from basicattn.data.video_test_dataset import VideoTestDataset
from basicattn.data.video_vimeo_dataset import VimeoSeptupletDataset
from basicattn.data.video_window import frame_window
from basicattn.registry import DATASETS
from basicattn.utils.img_util import img2tensor, imread, imwrite

H, W, SCALE = 12, 16, 2
VIMEO_CLIPS = ('00001/0001', '00001/0002', '00002/0001')
REDS_CLIPS = ('000', '001', '011', '015', '020')
REDS_FRAMES = 6


def _write_clip(gt_root, lq_root, clip, names, rng):
    for name in names:
        gt = (rng.random((H, W, 3)) * 255).astype(np.uint8)
        lq = cv2.resize(gt, (W // SCALE, H // SCALE), interpolation=cv2.INTER_AREA)
        imwrite(osp.join(gt_root, clip, f'{name}.png'), gt)
        imwrite(osp.join(lq_root, clip, f'{name}.png'), lq)


@pytest.fixture(scope='module')
def trees(tmp_path_factory):
    """Vimeo-like and REDS-like GT / LQ folders, a list file and LMDBs."""
    root = tmp_path_factory.mktemp('video')
    rng = np.random.default_rng(0)
    t = {}
    for kind, clips, names in (
        ('vimeo', VIMEO_CLIPS, [f'im{i}' for i in range(1, 8)]),
        ('reds', REDS_CLIPS, [f'{i:08d}' for i in range(REDS_FRAMES)]),
    ):
        gt, lq = str(root / kind / 'GT'), str(root / kind / 'LQ')
        for clip in clips:
            _write_clip(gt, lq, clip, names, rng)
        for role, src in (('GT', gt), ('LQ', lq)):
            db = str(root / kind / f'{role}.lmdb')
            build_lmdb_from_folder(src, db, progress=False, num_workers=0)
            t[f'{kind}_{role.lower()}_db'] = db
        t[f'{kind}_gt'], t[f'{kind}_lq'] = gt, lq
    listfile = root / 'sep_trainlist.txt'
    listfile.write_text('00001/0002\n00002/0001\n\n')
    t['vimeo_list'] = str(listfile)
    t['root'] = root
    return t


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
        elif k not in ('gt_path', 'lq_path'):
            assert a[k] == b[k], k


def _frames(root, clip, names):
    return torch.stack([img2tensor(imread(osp.join(root, clip, f'{n}.png'))) for n in names])


def _dihedral(img, code):
    h, v, t = code
    img = img[:, ::-1] if h else img
    img = img[::-1] if v else img
    return img.transpose(1, 0, 2) if t else img


def _placements(patch, full, step=1):
    """Every (flips, top, left) such that the patch is that crop, flipped."""
    found = set()
    p = patch.shape[0]
    for code in itertools.product((0, 1), repeat=3):
        for top in range(0, full.shape[0] - p + 1, step):
            for left in range(0, full.shape[1] - p + 1, step):
                crop = full[top : top + p, left : left + p]
                if np.array_equal(_dihedral(crop, code), patch):
                    found.add((code, top // step, left // step))
    return found


def _np(t):
    return t.permute(1, 2, 0).numpy()


# -- windows ---------------------------------------------------------------
@pytest.mark.parametrize(
    'center, n, num, interval, padding, expected',
    [
        (0, 10, 5, 1, 'reflection', [2, 1, 0, 1, 2]),
        (0, 10, 5, 1, 'replicate', [0, 0, 0, 1, 2]),
        (0, 10, 5, 1, 'reflection_circle', [4, 3, 0, 1, 2]),
        (0, 10, 5, 1, 'circle', [3, 4, 0, 1, 2]),
        (9, 10, 5, 1, 'reflection', [7, 8, 9, 8, 7]),
        (9, 10, 5, 1, 'replicate', [7, 8, 9, 9, 9]),
        (9, 10, 5, 1, 'reflection_circle', [7, 8, 9, 6, 5]),
        (9, 10, 5, 1, 'circle', [7, 8, 9, 5, 6]),
        (4, 10, 5, 1, 'reflection', [2, 3, 4, 5, 6]),
        (1, 6, 5, 2, 'reflection', [3, 1, 1, 3, 5]),
        (0, 3, 7, 1, 'reflection', [1, 2, 1, 0, 1, 2, 1]),
        (0, 1, 3, 1, 'reflection', [0, 0, 0]),
    ],
)
def test_frame_window(center, n, num, interval, padding, expected):
    assert frame_window(center, n, num, interval, padding) == expected


def test_frame_window_errors():
    with pytest.raises(ValueError, match='odd'):
        frame_window(0, 10, 4)
    with pytest.raises(ValueError, match="'mirror'.*reflection"):
        frame_window(0, 10, 5, padding='mirror')
    with pytest.raises(ValueError, match='interval 1'):
        frame_window(0, 10, 5, 2, 'circle')
    with pytest.raises(ValueError, match='cannot fill'):
        frame_window(0, 3, 7, 1, 'reflection_circle')
    with pytest.raises(ValueError, match='outside'):
        frame_window(10, 10, 5)


# -- Vimeo -----------------------------------------------------------------
def test_vimeo_list_file_and_given_lq(trees):
    ds = VimeoSeptupletDataset(
        trees['vimeo_gt'],
        trees['vimeo_lq'],
        meta_info_file=trees['vimeo_list'],
        scale=SCALE,
        num_frame=5,
    )
    assert len(ds) == 2 and ds.clips == ['00001/0002', '00002/0001']
    s = ds[1]
    names = [f'im{i}' for i in range(2, 7)]
    torch.testing.assert_close(s['lq'], _frames(trees['vimeo_lq'], '00002/0001', names))
    torch.testing.assert_close(s['gt'], _frames(trees['vimeo_gt'], '00002/0001', ['im4'])[0])
    assert s['key'] == '00002/0001/im4' and s['clip'] == '00002/0001'
    assert (s['frame_idx'], s['num_frames_in_clip']) == (3, 7)
    assert s['neighbors'].tolist() == [1, 2, 3, 4, 5]
    assert s['gt_path'] == osp.join(trees['vimeo_gt'], '00002/0001/im4.png')
    assert s['lq_path'] == osp.join(trees['vimeo_lq'], '00002/0001/im4.png')
    full = VimeoSeptupletDataset(
        trees['vimeo_gt'], trees['vimeo_lq'], scale=SCALE, return_all_gt=True
    )[0]
    assert full['lq'].shape == (7, 3, H // SCALE, W // SCALE)
    assert full['gt'].shape == (7, 3, H, W)
    assert DATASETS.get('VimeoSeptupletDataset') is VimeoSeptupletDataset


TRAIN = dict(scale=SCALE, gt_size=8, use_hflip=True, use_rot=True, random_reverse=True)


def test_vimeo_disk_and_lmdb_identical(trees):
    disk = VimeoSeptupletDataset(trees['vimeo_gt'], trees['vimeo_lq'], **TRAIN)
    db = VimeoSeptupletDataset(
        trees['vimeo_gt_db'], trees['vimeo_lq_db'], io_backend='lmdb', **TRAIN
    )
    assert disk.clips == db.clips == list(VIMEO_CLIPS)
    listed = VimeoSeptupletDataset(
        trees['vimeo_gt_db'],
        trees['vimeo_lq_db'],
        meta_info_file=trees['vimeo_list'],
        io_backend='lmdb',
        **TRAIN,
    )
    for index, seed in itertools.product(range(3), (0, 5)):
        _assert_same(disk[index, seed], db[index, seed])
        _assert_same(disk[index, seed], disk[index, seed])
    _assert_same(listed[0, 3], disk[1, 3])
    assert {disk[0, s]['lq'].numpy().tobytes() for s in range(6)}.__len__() > 1


def test_vimeo_one_crop_and_flip_for_all_frames(trees):
    whole = VimeoSeptupletDataset(
        trees['vimeo_gt'], trees['vimeo_lq'], scale=SCALE, return_all_gt=True
    )[2]
    reversed_seen = False
    for seed in range(6):
        s = VimeoSeptupletDataset(
            trees['vimeo_gt'], trees['vimeo_lq'], return_all_gt=True, **TRAIN
        )[2, seed]
        assert s['lq'].shape == (7, 3, 4, 4) and s['gt'].shape == (7, 3, 8, 8)
        order = s['neighbors'].tolist()
        reversed_seen |= order == list(range(6, -1, -1))
        assert order in (list(range(7)), list(range(6, -1, -1)))
        common = None
        for t, frame in enumerate(order):
            lq = _placements(_np(s['lq'][t]), _np(whole['lq'][frame]))
            gt = _placements(_np(s['gt'][t]), _np(whole['gt'][frame]), step=SCALE)
            both = lq & gt
            common = both if common is None else common & both
        assert len(common) == 1  # one crop and one flip for all frames
    assert reversed_seen


def test_vimeo_on_the_fly_degradations(trees):
    gt_root = trees['vimeo_gt']
    clip = '00001/0001'
    bd = VimeoSeptupletDataset(gt_root, scale=SCALE, num_frame=3, degradation='BD')[0]
    for t, name in enumerate(['im3', 'im4', 'im5']):
        img = imread(osp.join(gt_root, clip, f'{name}.png'))
        expected = BDDegradation(scale=SCALE).degrade(img)
        torch.testing.assert_close(bd['lq'][t], img2tensor(expected))
    assert bd['lq_path'].endswith('im4.png (BD x2)')
    dn = VimeoSeptupletDataset(gt_root, scale=SCALE, num_frame=3, degradation='DN')
    a, b = dn[0, 11], dn[0, 11]
    torch.testing.assert_close(a['lq'], b['lq'], rtol=0, atol=0)
    assert not torch.equal(a['lq'], dn[0, 12]['lq'])
    bi = VimeoSeptupletDataset(gt_root, scale=SCALE, num_frame=3)[0]
    noise = a['lq'] - bi['lq']
    assert not torch.allclose(noise[0], noise[1], atol=0.05)  # per frame
    img = imread(osp.join(gt_root, clip, 'im5.png'))
    expected = DNDegradation(scale=SCALE).degrade(img, seed=11, key=f'{clip}/im5')
    torch.testing.assert_close(a['lq'][2], img2tensor(expected))
    assert bi['lq'].dtype == torch.float32


def test_vimeo_gt_with_only_the_target_frame(trees, tmp_path):
    """BasicSR's Vimeo GT LMDBs hold only im4; that suffices with given LQ."""
    only4 = tmp_path / 'GT_only4th'
    for clip in VIMEO_CLIPS:
        os.makedirs(only4 / clip)
        shutil.copy(osp.join(trees['vimeo_gt'], clip, 'im4.png'), only4 / clip / 'im4.png')
    db = str(tmp_path / 'GT_only4th.lmdb')
    build_lmdb_from_folder(str(only4), db, progress=False, num_workers=0)
    full = VimeoSeptupletDataset(trees['vimeo_gt'], trees['vimeo_lq'], **TRAIN)
    for root, backend in ((str(only4), 'disk'), (db, 'lmdb')):
        ds = VimeoSeptupletDataset(
            root,
            trees['vimeo_lq_db'] if backend == 'lmdb' else trees['vimeo_lq'],
            meta_info_file=trees['vimeo_list'],
            io_backend=backend,
            **TRAIN,
        )
        _assert_same(ds[0, 4], full[1, 4])
    with pytest.raises(FileNotFoundError, match=r"'00001/0001' .*im1, im2"):
        VimeoSeptupletDataset(str(only4), trees['vimeo_lq'], return_all_gt=True)
    with pytest.raises(
        FileNotFoundError,
        match=r'line 1: .*lacks frame\(s\) '
        r'im1, im2, im3, im5',
    ):
        VimeoSeptupletDataset(db, meta_info_file=trees['vimeo_list'], io_backend='lmdb')


def test_vimeo_errors(trees, tmp_path):
    gt, lq = trees['vimeo_gt'], trees['vimeo_lq']
    with pytest.raises(ValueError, match='odd positive integer.*4'):
        VimeoSeptupletDataset(gt, num_frame=4)
    with pytest.raises(ValueError, match='num_frame 9 exceeds the 7'):
        VimeoSeptupletDataset(gt, num_frame=9)
    bad_list = tmp_path / 'list.txt'
    bad_list.write_text('00001/0001\n00001/0009\n')
    for root, backend in ((gt, 'disk'), (trees['vimeo_gt_db'], 'lmdb')):
        with pytest.raises(FileNotFoundError, match=r"list.txt, line 2: clip '00001/0009'"):
            VimeoSeptupletDataset(root, meta_info_file=str(bad_list), io_backend=backend)
    with pytest.raises(FileNotFoundError, match='missing'):
        VimeoSeptupletDataset(str(tmp_path / 'missing'))
    # A missing frame: named at init after a scan, when read with a list.
    broken = tmp_path / 'broken'
    shutil.copytree(osp.join(gt, '00001'), broken / '00001')
    os.remove(broken / '00001' / '0002' / 'im3.png')
    with pytest.raises(FileNotFoundError, match=r"'00001/0002' .*im3"):
        VimeoSeptupletDataset(str(broken))
    one = tmp_path / 'one.txt'
    one.write_text('00001/0002\n')
    listed = VimeoSeptupletDataset(str(broken), meta_info_file=str(one), scale=SCALE, num_frame=3)
    with pytest.raises(FileNotFoundError) as info:
        listed[0]
    assert osp.join(str(broken), '00001/0002/im3') in str(info.value)
    with pytest.raises(
        ValueError,
        match=r'GT frame .*im4\.png has shape '
        r'\(12, 16, 3\) but LQ frame .*im4\.png',
    ):
        VimeoSeptupletDataset(gt, lq, scale=3)[0]


# -- REDS ------------------------------------------------------------------
def test_reds_windows_intervals_and_exclusion(trees):
    gt, lq = trees['reds_gt'], trees['reds_lq']
    ds = REDSClipDataset(gt, lq, scale=SCALE, num_frame=5)
    assert len(ds) == len(REDS_CLIPS) * REDS_FRAMES
    assert ds.clip_names == list(REDS_CLIPS)
    first = ds[0]
    assert first['key'] == '000/00000000' and first['interval'] == 1
    assert first['neighbors'].tolist() == [2, 1, 0, 1, 2]
    names = [f'{i:08d}' for i in (2, 1, 0, 1, 2)]
    torch.testing.assert_close(first['lq'], _frames(lq, '000', names))
    last = ds[REDS_FRAMES - 1]
    assert last['neighbors'].tolist() == [3, 4, 5, 4, 3]
    assert (last['frame_idx'], last['num_frames_in_clip']) == (5, 6)
    rep = REDSClipDataset(gt, lq, scale=SCALE, num_frame=5, padding='replicate')[0]
    assert rep['neighbors'].tolist() == [0, 0, 0, 1, 2]

    multi = REDSClipDataset(gt, lq, scale=SCALE, num_frame=3, interval_list=[1, 2, 3])
    seen = set()
    for seed in range(12):
        s = multi[9, seed]  # frame 3 of clip 001
        i = s['interval']
        seen.add(i)
        assert s['neighbors'].tolist() == frame_window(3, 6, 3, i)
        assert multi[9, seed]['interval'] == i
    assert seen == {1, 2, 3}

    held = REDSClipDataset(gt, lq, scale=SCALE, exclude_clips='REDS4')
    assert held.clip_names == ['001'] and len(held) == REDS_FRAMES
    some = REDSClipDataset(gt, scale=SCALE, exclude_clips=['000', '020'])
    assert some.clip_names == ['001', '011', '015']
    assert DATASETS.get('REDSClipDataset') is REDSClipDataset


def test_reds_disk_and_lmdb_identical(trees):
    opts = dict(
        num_frame=3, interval_list=[1, 2], exclude_clips=['011'], return_all_gt=True, **TRAIN
    )
    disk = REDSClipDataset(trees['reds_gt'], trees['reds_lq'], **opts)
    db = REDSClipDataset(trees['reds_gt_db'], trees['reds_lq_db'], io_backend='lmdb', **opts)
    gen = REDSClipDataset(trees['reds_gt'], degradation='BD', **opts)
    gen_db = REDSClipDataset(trees['reds_gt_db'], io_backend='lmdb', degradation='BD', **opts)
    assert len(disk) == len(db) == 24
    for index, seed in ((0, 0), (5, 1), (13, 2), (23, 3)):
        _assert_same(disk[index, seed], db[index, seed])
        _assert_same(gen[index, seed], gen_db[index, seed])
    s = disk[13, 2]
    assert s['gt'].shape == (3, 3, 8, 8) and s['lq'].shape == (3, 3, 4, 4)


def test_reds_meta_info_and_errors(trees, tmp_path):
    gt, lq = trees['reds_gt'], trees['reds_lq']
    meta = tmp_path / 'meta_info_REDS_GT.txt'
    meta.write_text('015 6 (12,16,3)\n001 6 (12,16,3)\n')
    ds = REDSClipDataset(gt, lq, meta_info_file=str(meta), scale=SCALE)
    assert ds.clip_names == ['015', '001']
    meta.write_text('015 6 (12,16,3)\n001 100 (12,16,3)\n')
    with pytest.raises(
        ValueError,
        match=r"line 2: clip '001' is listed with "
        '100 frames but GT .* holds 6',
    ):
        REDSClipDataset(gt, meta_info_file=str(meta))
    meta.write_text('015\n042\n')
    with pytest.raises(FileNotFoundError, match=r"line 2: clip '042' not fou"):
        REDSClipDataset(gt, meta_info_file=str(meta))
    with pytest.raises(
        ValueError,
        match=r'num_frame 7 is larger than clip '
        r"'000'.*6 frames",
    ):
        REDSClipDataset(gt, num_frame=7)
    with pytest.raises(ValueError, match="exclude_clips: clip '099'"):
        REDSClipDataset(gt, exclude_clips=['099'])
    with pytest.raises(TypeError, match='quote'):
        REDSClipDataset(gt, exclude_clips=[0])
    with pytest.raises(ValueError, match='interval_list'):
        REDSClipDataset(gt, interval_list=[0])
    with pytest.raises(ValueError, match="padding 'zeros'"):
        REDSClipDataset(gt, padding='zeros')
    with pytest.raises(ValueError, match='needs interval_list'):
        REDSClipDataset(gt, padding='circle', interval_list=[1, 2])
    # An LQ frame missing: named at init, with the clip.
    lq_copy = tmp_path / 'LQ'
    shutil.copytree(lq, lq_copy)
    os.remove(lq_copy / '011' / '00000004.png')
    with pytest.raises(FileNotFoundError, match=r"clip '011' lacks 1 LQ frame.*00000004"):
        REDSClipDataset(gt, str(lq_copy), scale=SCALE)
    flat = tmp_path / 'flat'
    flat.mkdir()
    shutil.copy(osp.join(gt, '000', '00000000.png'), flat / 'a.png')
    with pytest.raises(ValueError, match='holds frames directly'):
        REDSClipDataset(str(flat))


# -- whole clips -----------------------------------------------------------
def test_video_test_dataset_order_and_fields(trees):
    gt, lq = trees['reds_gt'], trees['reds_lq']
    ds = VideoTestDataset(gt, lq, clips='REDS4', scale=SCALE, num_frame=5)
    assert ds.list_clips() == [(c, REDS_FRAMES) for c in ('000', '011', '015', '020')]
    assert len(ds) == 4 * REDS_FRAMES
    assert ds.clip_indices('015') == range(12, 18)
    assert ds.locate(13) == ('015', 1)
    keys = [ds[i]['key'] for i in range(len(ds))]
    assert keys == [
        f'{c}/{f:08d}' for c in ('000', '011', '015', '020') for f in range(REDS_FRAMES)
    ]
    s = ds[13]
    assert (s['clip'], s['frame_idx'], s['num_frames_in_clip']) == ('015', 1, 6)
    assert s['border'] and not ds[14]['border'] and ds[17]['border']
    assert s['neighbors'].tolist() == [1, 0, 1, 2, 3]
    torch.testing.assert_close(s['gt'], _frames(gt, '015', ['00000001'])[0])
    names = [f'{i:08d}' for i in (1, 0, 1, 2, 3)]
    torch.testing.assert_close(s['lq'], _frames(lq, '015', names))
    _assert_same(ds[13], ds[13])
    circ = VideoTestDataset(gt, lq, scale=SCALE, num_frame=5, padding='reflection_circle')
    assert circ[0]['neighbors'].tolist() == [4, 3, 0, 1, 2]
    with pytest.raises(KeyError, match='042'):
        ds.clip_indices('042')
    with pytest.raises(IndexError, match='24'):
        ds[24]
    with pytest.raises(ValueError, match='not both'):
        VideoTestDataset(gt, clips=['000'], meta_info_file=trees['vimeo_list'])
    assert DATASETS.get('VideoTestDataset') is VideoTestDataset


def test_video_test_dataset_on_vimeo_layout(trees):
    gt, lq = trees['vimeo_gt'], trees['vimeo_lq']
    ds = VideoTestDataset(gt, lq, meta_info_file=trees['vimeo_list'], scale=SCALE, num_frame=7)
    assert ds.list_clips() == [('00001/0002', 7), ('00002/0001', 7)]
    centre = ds[3]
    assert centre['key'] == '00001/0002/im4' and not centre['border']
    vimeo = VimeoSeptupletDataset(gt, lq, meta_info_file=trees['vimeo_list'], scale=SCALE)[0]
    torch.testing.assert_close(centre['lq'], vimeo['lq'], rtol=0, atol=0)
    torch.testing.assert_close(centre['gt'], vimeo['gt'], rtol=0, atol=0)
    crop = VideoTestDataset(
        gt, lq, meta_info_file=trees['vimeo_list'], scale=SCALE, num_frame=3, gt_size=8
    )[3]
    assert crop['gt'].shape == (3, 8, 8) and crop['lq'].shape == (3, 3, 4, 4)
    torch.testing.assert_close(crop['gt'], centre['gt'][:, 2:10, 4:12])
    torch.testing.assert_close(crop['lq'][1], centre['lq'][3][:, 1:5, 2:6])


def test_video_test_dataset_dn_is_deterministic(trees):
    ds = VideoTestDataset(
        trees['reds_gt'],
        clips=['001'],
        scale=SCALE,
        num_frame=3,
        degradation='DN',
        return_all_gt=True,
    )
    a, b = ds[2], ds[3]
    _assert_same(
        a,
        VideoTestDataset(
            trees['reds_gt'],
            clips=['001'],
            scale=SCALE,
            num_frame=3,
            degradation='DN',
            return_all_gt=True,
        )[2],
    )
    # Frame 3 has the same LQ as the right neighbour of frame 2's window.
    torch.testing.assert_close(a['lq'][2], b['lq'][1], rtol=0, atol=0)
    assert a['gt'].shape == (3, 3, H, W)


def test_dataloader_with_resumable_sampler(trees):
    ds = REDSClipDataset(
        trees['reds_gt_db'], trees['reds_lq_db'], io_backend='lmdb', num_frame=3, **TRAIN
    )
    sampler = ResumableInfiniteSampler(ds, seed=3)
    expected = list(itertools.islice(iter(sampler), 4))
    ds[0, 0]  # open the LMDB in the parent before the workers fork
    loader = DataLoader(ds, batch_size=2, num_workers=2, sampler=sampler)
    batches = list(itertools.islice(iter(loader), 2))
    assert batches[0]['lq'].shape == (2, 3, 3, 4, 4)
    assert batches[0]['neighbors'].shape == (2, 3)
    for i, (index, seed) in enumerate(expected):
        one = ds[index, seed]
        torch.testing.assert_close(batches[i // 2]['lq'][i % 2], one['lq'])
        assert batches[i // 2]['key'][i % 2] == one['key']
    test = VideoTestDataset(
        trees['reds_gt'], trees['reds_lq'], clips=['001'], scale=SCALE, num_frame=3
    )
    batch = next(iter(DataLoader(test, batch_size=6)))
    assert batch['frame_idx'].tolist() == list(range(6))
    assert batch['clip'] == ['001'] * 6
    assert batch['border'].tolist() == [True] + [False] * 4 + [True]
