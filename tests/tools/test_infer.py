"""tools/infer.py: image folders, frame folders and video files, with image
and video archs, window and sequence modes, and its refusals."""

import json
import os
import os.path as osp

import cv2
import numpy as np
import torch

from basicattn.archs.bicubic_arch import Bicubic
from basicattn.registry import ARCHS
from basicattn.utils.img_util import img2tensor, imread, imwrite, tensor2img

DASAA_TINY = dict(
    type='DASAA',
    num_feat=8,
    num_rdb=1,
    rdb_layers=2,
    growth=4,
    reduction=2,
    pab_hidden=4,
    attn_chunk=16,
)


def _assert_same_image(got, expected):
    """The tool's PNG against this process's own forward of the same network.

    The tool runs with one thread and this process with several, so the
    convolutions may sum in another order: a value at a rounding boundary can
    land one grey level away. A wrong network or window is off by far more.
    """
    assert got.shape == expected.shape
    assert np.abs(got.astype(np.int16) - expected.astype(np.int16)).max() <= 1


def _frames(folder, count=5, size=(12, 16), seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    frames = []
    for i in range(count):
        img = cv2.GaussianBlur((rng.random((*size, 3)) * 255).astype(np.uint8), (5, 5), 1)
        imwrite(osp.join(folder, f'f{i}.png'), img)  # natural order: f2 < f10
        frames.append(img)
    return frames


def _checkpoint(path, cfg):
    torch.manual_seed(0)
    net = ARCHS.build(dict(cfg))
    torch.save({'state_dict': net.state_dict(), 'meta': {'arch': dict(cfg)}}, path)
    return net.eval()


def test_image_folder_with_bicubic(tmp_path, tool):
    frames = _frames(str(tmp_path / 'in'), count=3)
    out = tool(
        'tools/infer.py',
        str(tmp_path / 'in'),
        str(tmp_path / 'out'),
        '--arch',
        'Bicubic',
        '--arch-args',
        json.dumps({'scale': 2}),
        '--quiet',
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / 'out')
    for i, frame in enumerate(frames):
        expected = tensor2img(Bicubic(scale=2)(img2tensor(frame)[None])[0])
        _assert_same_image(imread(str(tmp_path / 'out' / f'f{i}.png')), expected)
    again = tool(
        'tools/infer.py',
        str(tmp_path / 'in'),
        str(tmp_path / 'out'),
        '--arch',
        'Bicubic',
        '--quiet',
    )
    assert again.returncode == 2 and 'exists; pass --overwrite' in again.stderr


BICUBIC_X2 = ('--arch', 'Bicubic', '--arch-args', json.dumps({'scale': 2}), '--quiet')


def test_single_image_to_an_image_file(tmp_path, forked_tool):
    (frame,) = _frames(str(tmp_path / 'in'), count=1)
    src, target = str(tmp_path / 'in' / 'f0.png'), str(tmp_path / 'sr.png')
    out = forked_tool('tools/infer.py', src, target, *BICUBIC_X2)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == target
    assert osp.isfile(target)  # a file, not a folder named sr.png
    expected = tensor2img(Bicubic(scale=2)(img2tensor(frame)[None])[0])
    _assert_same_image(imread(target), expected)
    assert sorted(os.listdir(tmp_path)) == ['in', 'sr.png']  # no temporary file left
    again = forked_tool('tools/infer.py', src, target, *BICUBIC_X2)
    assert again.returncode == 2 and 'exists; pass --overwrite' in again.stderr
    jpeg = str(tmp_path / 'sr.JPG')  # any image suffix, any case; it picks the format
    out = forked_tool('tools/infer.py', src, jpeg, *BICUBIC_X2)
    assert out.returncode == 0, out.stderr[-2000:]
    assert imread(jpeg).shape == (24, 32, 3)
    with open(jpeg, 'rb') as f:
        assert f.read(2) == b'\xff\xd8'  # JPEG, not PNG bytes under a .jpg name
    folder = str(tmp_path / 'as_folder')  # no image suffix: a folder, as before
    out = forked_tool('tools/infer.py', src, folder, *BICUBIC_X2)
    assert out.returncode == 0, out.stderr[-2000:]
    assert os.listdir(folder) == ['f0.png']


def test_an_image_file_output_for_a_folder_is_one_error(tmp_path, forked_tool):
    _frames(str(tmp_path / 'in'), count=2)
    target = str(tmp_path / 'out.png')
    result = forked_tool('tools/infer.py', str(tmp_path / 'in'), target, *BICUBIC_X2)
    _assert_one_error_naming(result, target)
    assert 'is a folder' in result.stderr
    assert sorted(os.listdir(tmp_path)) == ['in']  # nothing created


def test_frame_folder_with_video_arch_windows_and_sequence(tmp_path, tool):
    frames = _frames(str(tmp_path / 'clip'))
    ckpt = str(tmp_path / 'dasaa.pth')
    net = _checkpoint(ckpt, DASAA_TINY)
    out = tool(
        'tools/infer.py',
        str(tmp_path / 'clip'),
        str(tmp_path / 'seq'),
        '--checkpoint',
        ckpt,
        '--quiet',
        '--precision',
        'fp32',  # compared below with this process's float32 forward
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'DASAA (video, sequence)' in out.stdout
    win = tool(
        'tools/infer.py',
        str(tmp_path / 'clip'),
        str(tmp_path / 'win'),
        '--checkpoint',
        ckpt,
        '--mode',
        'window',
        '--quiet',
        '--precision',
        'fp32',
    )
    assert win.returncode == 0, win.stderr[-2000:]
    lq = torch.stack([img2tensor(f) for f in frames])
    windows = [[2, 1, 0, 1, 2], [1, 0, 1, 2, 3], [0, 1, 2, 3, 4], [1, 2, 3, 4, 3], [2, 3, 4, 3, 2]]
    state = None
    with torch.no_grad():
        for i, ids in enumerate(windows):
            alone = tensor2img(net(lq[ids][None]).clamp(0, 1)[0])
            assert np.array_equal(imread(str(tmp_path / 'win' / f'f{i}.png')), alone)
            seq, state = net(lq[ids][None], state, return_state=True)
            assert np.array_equal(
                imread(str(tmp_path / 'seq' / f'f{i}.png')), tensor2img(seq.clamp(0, 1)[0])
            )
    # frame 0 starts from the zero state in both modes; later frames differ
    assert np.array_equal(
        imread(str(tmp_path / 'seq' / 'f0.png')), imread(str(tmp_path / 'win' / 'f0.png'))
    )
    bad = tool(
        'tools/infer.py',
        str(tmp_path / 'clip'),
        str(tmp_path / 'x'),
        '--checkpoint',
        ckpt,
        '--mode',
        'sequence',
        '--tile',
        '8',
    )
    assert bad.returncode == 2 and 'cannot be combined with --tile' in bad.stderr


def test_video_file_in_and_out(tmp_path, tool):
    frames = _frames(str(tmp_path / 'src'), count=6, size=(24, 32))
    src = str(tmp_path / 'in.avi')
    writer = cv2.VideoWriter(src, cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (32, 24))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    ckpt = str(tmp_path / 'dasaa.pth')
    _checkpoint(ckpt, DASAA_TINY)
    target = str(tmp_path / 'out' / 'sr.mp4')
    out = tool(
        'tools/infer.py',
        src,
        target,
        '--checkpoint',
        ckpt,
        '--tile',
        '16',
        '--tile-overlap',
        '4',
        '--mode',
        'window',
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert os.listdir(tmp_path / 'out') == ['sr.mp4']  # no temporary file left
    cap = cv2.VideoCapture(target)
    assert cap.get(cv2.CAP_PROP_FPS) == 10.0
    decoded = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        decoded.append(frame)
    assert len(decoded) == 6 and decoded[0].shape == (96, 128, 3)
    again = tool('tools/infer.py', src, target, '--checkpoint', ckpt)
    assert again.returncode == 2 and 'exists; pass --overwrite' in again.stderr


def test_errors_name_the_problem(tmp_path, tool):
    missing = tool(
        'tools/infer.py', str(tmp_path / 'nope'), str(tmp_path / 'o'), '--arch', 'Bicubic'
    )
    assert missing.returncode == 2 and 'input not found' in missing.stderr
    _frames(str(tmp_path / 'in'), count=1)
    no_weights = tool('tools/infer.py', str(tmp_path / 'in'), str(tmp_path / 'o'), '--arch', 'EDSR')
    assert no_weights.returncode == 2 and 'pass --checkpoint' in no_weights.stderr
    empty = tmp_path / 'empty'
    empty.mkdir()
    none = tool('tools/infer.py', str(empty), str(tmp_path / 'o'), '--arch', 'Bicubic')
    assert none.returncode == 2 and 'no images' in none.stderr


def _tree(folder):
    """{relative path: bytes} of every file under ``folder`` (None if absent)."""
    if not osp.exists(folder):
        return None
    found = {}
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                found[osp.relpath(path, folder)] = f.read()
    return found


def _corrupt_middle(folder):
    _frames(folder, count=5)
    bad = osp.join(folder, 'f2.png')
    with open(bad, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n truncated')
    return bad


def _assert_one_error_naming(result, path):
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith('libpng')
    ]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr
    assert path in lines[0]


def test_failed_frame_leaves_absent_output_absent(tmp_path, tool):
    bad = _corrupt_middle(str(tmp_path / 'in'))
    out = str(tmp_path / 'out')
    result = tool(
        'tools/infer.py',
        str(tmp_path / 'in'),
        out,
        '--arch',
        'Bicubic',
        '--arch-args',
        json.dumps({'scale': 2}),
        '--quiet',
    )
    _assert_one_error_naming(result, bad)
    assert not osp.exists(out)
    assert sorted(os.listdir(tmp_path)) == ['in']  # no temporary folder left


def test_failed_frame_leaves_existing_output_as_it_was(tmp_path, tool):
    bad = _corrupt_middle(str(tmp_path / 'in'))
    out = tmp_path / 'out'
    out.mkdir()
    imwrite(str(out / 'f0.png'), np.zeros((4, 4, 3), np.uint8))  # an earlier result
    (out / 'notes.txt').write_text('mine')
    before = _tree(str(out))
    result = tool(
        'tools/infer.py',
        str(tmp_path / 'in'),
        str(out),
        '--arch',
        'Bicubic',
        '--arch-args',
        json.dumps({'scale': 2}),
        '--quiet',
        '--overwrite',
    )
    _assert_one_error_naming(result, bad)
    assert _tree(str(out)) == before
    assert sorted(os.listdir(tmp_path)) == ['in', 'out']
    # once the input is fixed, --overwrite replaces f0.png and keeps the rest
    _frames(str(tmp_path / 'in'), count=5)
    result = tool(
        'tools/infer.py',
        str(tmp_path / 'in'),
        str(out),
        '--arch',
        'Bicubic',
        '--arch-args',
        json.dumps({'scale': 2}),
        '--quiet',
        '--overwrite',
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(out)) == [
        'f0.png',
        'f1.png',
        'f2.png',
        'f3.png',
        'f4.png',
        'notes.txt',
    ]
    assert imread(str(out / 'f0.png')).shape == (24, 32, 3)
    assert sorted(os.listdir(tmp_path)) == ['in', 'out']


def test_failed_frame_leaves_no_partial_video(tmp_path, tool):
    bad = _corrupt_middle(str(tmp_path / 'in'))
    out = str(tmp_path / 'out.avi')
    result = tool(
        'tools/infer.py',
        str(tmp_path / 'in'),
        out,
        '--arch',
        'Bicubic',
        '--arch-args',
        json.dumps({'scale': 2}),
        '--quiet',
    )
    _assert_one_error_naming(result, bad)
    assert sorted(os.listdir(tmp_path)) == ['in']


def test_full_disk_names_the_output(tmp_path, tool, small_disk):
    disk = small_disk('64k')
    rng = np.random.default_rng(0)
    os.makedirs(tmp_path / 'in')
    for i in range(2):  # noise: the x2 PNGs do not fit in 64 KiB
        imwrite(
            str(tmp_path / 'in' / f'f{i}.png'), (rng.random((100, 100, 3)) * 255).astype(np.uint8)
        )
    out = osp.join(disk, 'out')
    result = tool(
        'tools/infer.py',
        str(tmp_path / 'in'),
        out,
        '--arch',
        'Bicubic',
        '--arch-args',
        json.dumps({'scale': 2}),
        '--quiet',
    )
    _assert_one_error_naming(result, osp.join(out, 'f0.png'))
    assert 'No space left on device' in result.stderr
    assert os.listdir(disk) == []
