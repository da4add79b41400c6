"""Image io and numpy <-> tensor conversion."""

import os

import cv2
import numpy as np
import pytest
import torch

from basicattn.utils.img_util import (
    imencode_png,
    imfrombytes,
    img2tensor,
    imread,
    imwrite,
    mod_crop,
    tensor2img,
)


@pytest.fixture
def img(rng):
    return rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)


def test_png_roundtrip_is_rgb(tmp_path, img):
    path = tmp_path / 'a' / 'b' / 'x.png'  # parent folders get created
    assert imwrite(path, img, compress_level=9) == str(path)
    np.testing.assert_array_equal(imread(path), img)
    # On disk it is a normal (BGR-ordered for OpenCV) PNG.
    np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], img)
    assert sorted(os.listdir(path.parent)) == ['x.png']  # no temp file left


def test_imwrite_replaces_and_leaves_no_temp_on_failure(tmp_path, img, monkeypatch):
    path = tmp_path / 'y.png'
    imwrite(path, img)
    imwrite(path, img[::-1].copy())  # overwrite in place
    np.testing.assert_array_equal(imread(path), img[::-1])

    def boom(src, dst):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', boom)
    with pytest.raises(OSError, match='disk full'):
        imwrite(path, img)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ['y.png']
    np.testing.assert_array_equal(imread(path), img[::-1])  # old file intact


def test_gray_and_alpha_become_rgb(tmp_path, img):
    gray = img[..., 0]
    cv2.imwrite(str(tmp_path / 'g.png'), gray)
    out = imread(tmp_path / 'g.png')
    assert out.shape == (6, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)
    rgba = np.concatenate([img[..., ::-1], np.full((6, 7, 1), 7, np.uint8)], 2)
    cv2.imwrite(str(tmp_path / 'a.png'), rgba)
    np.testing.assert_array_equal(imread(tmp_path / 'a.png'), img)


def test_imencode_and_imfrombytes(img):
    buf = imencode_png(img)
    assert isinstance(buf, bytes) and buf[:8] == b'\x89PNG\r\n\x1a\n'
    np.testing.assert_array_equal(imfrombytes(buf), img)
    with pytest.raises(ValueError, match='lmdb key abc/001'):
        imfrombytes(b'not an image', source='lmdb key abc/001')
    with pytest.raises(ValueError, match='<bytes>'):
        imfrombytes(b'')
    with pytest.raises(TypeError, match='bytes'):
        imfrombytes('text')


def test_read_errors_name_the_path(tmp_path):
    missing = tmp_path / 'nope.png'
    with pytest.raises(FileNotFoundError, match='nope.png'):
        imread(missing)
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'garbage')
    with pytest.raises(ValueError, match='bad.png'):
        imread(bad)


def test_write_errors(tmp_path, img):
    with pytest.raises(TypeError, match='uint8'):
        imwrite(tmp_path / 'f.png', img.astype(np.float32))
    with pytest.raises(ValueError, match=r'\(6, 7, 4\)'):
        imwrite(tmp_path / 'f.png', np.zeros((6, 7, 4), np.uint8))
    with pytest.raises(ValueError, match='noext'):
        imwrite(tmp_path / 'noext', img)
    with pytest.raises(ValueError, match='compress_level'):
        imwrite(tmp_path / 'f.png', img, compress_level=10)
    with pytest.raises(ValueError, match='PNG only'):
        imwrite(tmp_path / 'f.jpg', img, compress_level=3)
    assert os.listdir(tmp_path) == []


def test_img2tensor_tensor2img_roundtrip(img):
    t = img2tensor(img)
    assert t.dtype == torch.float32 and t.shape == (3, 6, 7)
    assert float(t.max()) <= 1.0
    np.testing.assert_array_equal(tensor2img(t), img)
    np.testing.assert_array_equal(tensor2img(t[None]), img)
    f = img2tensor((img / 255.0).astype(np.float64))  # float: not rescaled
    assert torch.allclose(f, t)
    assert img2tensor(img[..., 0]).shape == (1, 6, 7)


def test_tensor2img_clamps_and_rounds():
    t = torch.tensor([-0.5, 0.0, 0.5 / 255, 1.5 / 255, 2.5 / 255, 0.999, 2.0])
    out = tensor2img(t.view(1, 1, 7))
    assert out.shape == (1, 7, 1) and out.dtype == np.uint8
    # torch.round rounds half to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2.
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 0, 2, 2, 255, 255])
    with pytest.raises(ValueError, match=r'\(2, 3, 4, 4\)'):
        tensor2img(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r'\(4, 4\)'):
        tensor2img(torch.zeros(4, 4))
    with pytest.raises(TypeError, match='float tensor'):
        tensor2img(np.zeros((3, 4, 4)))


def test_mod_crop(img):
    assert mod_crop(img, 4).shape == (4, 4, 3)
    assert mod_crop(img[..., 0], 3).shape == (6, 6)
    np.testing.assert_array_equal(mod_crop(img, 2), img[:6, :6])
    with pytest.raises(ValueError, match='scale'):
        mod_crop(img, 0)
    with pytest.raises(ValueError, match='scale'):
        mod_crop(img, 2.0)
    with pytest.raises(ValueError, match='smaller than scale 8'):
        mod_crop(img, 8)


@pytest.mark.parametrize('value, kind', [(float('nan'), 'nan'), (float('-inf'), 'inf')])
def test_tensor2img_refuses_non_finite_values(value, kind):
    """NaN has no 8-bit value (it used to become black silently)."""
    t = torch.rand(3, 4, 5)
    t[1, 2, 3] = value
    with pytest.raises(ValueError, match=rf'holds {kind} \(1 of 60 values\)'):
        tensor2img(t)
