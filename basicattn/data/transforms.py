"""Paired cropping and dihedral augmentation on numpy images (HWC or HW).

All randomness comes from the ``numpy.random.Generator`` passed in, so a
caller that seeds the generator gets the same crop and flips every time.
"""

import numpy as np

from basicattn.errors import DataError

__all__ = ['paired_random_crop', 'augment']


def _as_list(imgs):
    if isinstance(imgs, (list, tuple)):
        return list(imgs), True
    return [imgs], False


def _hw(img):
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
        got = getattr(img, 'shape', type(img).__name__)
        raise ValueError(f'expected an HW or HWC numpy array, got {got}')
    return img.shape[0], img.shape[1]


def paired_random_crop(img_gts, img_lqs, gt_patch_size, scale, rng, gt_path=''):
    """Crop corresponding random patches from GT and LQ images.

    The LQ patch (``gt_patch_size // scale`` pixels square) starts at a
    random ``(top, left)``; the GT patch starts at ``(top * scale, left *
    scale)``, so both cover the same area. Every image of a list gets the
    same position. The first draw from ``rng`` is ``top``, the second
    ``left``.

    Args:
        img_gts (ndarray | list[ndarray]): GT images, HWC or HW, all of one
            size.
        img_lqs (ndarray | list[ndarray]): LQ images, all of one size, which
            must be the GT size divided by ``scale``.
        gt_patch_size (int): Patch size in GT pixels, a multiple of
            ``scale``.
        scale (int): The upscaling factor.
        rng (numpy.random.Generator | None): Source of randomness; None uses
            a fresh unseeded generator.
        gt_path (str): Path of the GT image, named in error messages.

    Returns:
        tuple: ``(img_gts, img_lqs)`` cropped, C-contiguous; each is a list
        if the corresponding input was a list, else a single array.

    Raises:
        ValueError: The sizes do not correspond, the patch size is not a
            multiple of ``scale`` or the LQ image is smaller than the patch.
    """
    gts, gt_is_list = _as_list(img_gts)
    lqs, lq_is_list = _as_list(img_lqs)
    where = f' ({gt_path})' if gt_path else ''
    if not gts or not lqs:
        raise ValueError(f'paired_random_crop needs at least one GT and one LQ image{where}')
    scale = int(scale)
    gt_patch_size = int(gt_patch_size)
    if scale < 1 or gt_patch_size < 1 or gt_patch_size % scale:
        raise ValueError(
            f'gt_patch_size {gt_patch_size} must be a positive multiple of scale {scale}{where}'
        )
    lq_patch_size = gt_patch_size // scale
    h_lq, w_lq = _hw(lqs[0])
    h_gt, w_gt = _hw(gts[0])
    for img in lqs[1:]:
        if _hw(img) != (h_lq, w_lq):
            raise DataError(f'LQ images of different sizes {(h_lq, w_lq)} and {_hw(img)}{where}')
    for img in gts[1:]:
        if _hw(img) != (h_gt, w_gt):
            raise DataError(f'GT images of different sizes {(h_gt, w_gt)} and {_hw(img)}{where}')
    if (h_gt, w_gt) != (h_lq * scale, w_lq * scale):
        raise DataError(f'GT size {h_gt}x{w_gt} is not {scale} x the LQ size {h_lq}x{w_lq}{where}')
    if h_lq < lq_patch_size or w_lq < lq_patch_size:
        raise DataError(
            f'LQ image {h_lq}x{w_lq} is smaller than the LQ patch '
            f'{lq_patch_size}x{lq_patch_size} (gt_size {gt_patch_size}, '
            f'scale {scale}){where}'
        )
    if rng is None:
        rng = np.random.default_rng()
    top = int(rng.integers(0, h_lq - lq_patch_size + 1))
    left = int(rng.integers(0, w_lq - lq_patch_size + 1))
    lqs = [
        np.ascontiguousarray(img[top : top + lq_patch_size, left : left + lq_patch_size])
        for img in lqs
    ]
    top_gt, left_gt = top * scale, left * scale
    gts = [
        np.ascontiguousarray(
            img[top_gt : top_gt + gt_patch_size, left_gt : left_gt + gt_patch_size]
        )
        for img in gts
    ]
    return (gts if gt_is_list else gts[0]), (lqs if lq_is_list else lqs[0])


def augment(imgs, hflip=True, rotation=True, rng=None):
    """Apply one random dihedral transform to every image of a list.

    Three coin flips are drawn from ``rng`` (always three, so the stream of
    draws does not depend on the flags): horizontal flip, vertical flip and
    transpose. ``hflip`` enables the first, ``rotation`` the other two;
    with both, the composition reaches all 8 rotations/reflections of the
    square (the rot90 family and its mirrors). The same transform is applied
    to all images, so GT and LQ stay aligned.

    Args:
        imgs (ndarray | list[ndarray]): Images, HWC or HW.
        hflip (bool): Allow a horizontal flip. Defaults to True.
        rotation (bool): Allow a vertical flip and a transpose (together
            with ``hflip``: rotations by multiples of 90 degrees).
            Defaults to True.
        rng (numpy.random.Generator, optional): Source of randomness; None
            uses a fresh unseeded generator.

    Returns:
        ndarray | list[ndarray]: The transformed images, C-contiguous, in
        the same form (list or single array) as ``imgs``.
    """
    images, is_list = _as_list(imgs)
    if rng is None:
        rng = np.random.default_rng()
    coins = rng.random(3) < 0.5
    do_hflip = bool(hflip and coins[0])
    do_vflip = bool(rotation and coins[1])
    do_transpose = bool(rotation and coins[2])

    def apply(img):
        _hw(img)
        if do_hflip:
            img = img[:, ::-1]
        if do_vflip:
            img = img[::-1]
        if do_transpose:
            img = img.transpose(1, 0, 2) if img.ndim == 3 else img.T
        return np.ascontiguousarray(img)

    out = [apply(img) for img in images]
    return out if is_list else out[0]
