"""The embedded demo data: real photographs shipped inside scikit-image.

Nothing is downloaded. Six photographs are used for training and two are held
out for evaluation; HR images are cropped to a multiple of the scale, LR
images are made with the MATLAB-exact bicubic ``imresize`` (BI degradation),
and the training pairs are also packed into LMDB databases so the demo runs
the same data path as a real DIV2K experiment.
"""

import os
import os.path as osp

TRAIN_PHOTOS = (
    'chelsea',
    'rocket',
    'immunohistochemistry',
    'hubble_deep_field',
    'motorcycle_left',
    'retina',
)
HELDOUT_PHOTOS = ('astronaut', 'coffee')


def load_photo(name):
    """Return a scikit-image photograph as uint8 HWC RGB.

    Args:
        name (str): A function of ``skimage.data`` or ``'motorcycle_left'``.

    Returns:
        np.ndarray: The image.
    """
    try:
        import skimage.data as data
    except ImportError as err:
        raise ImportError(
            'the demo needs scikit-image (pip install scikit-image), whose '
            'package carries the photographs'
        ) from err
    if name == 'motorcycle_left':
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


def _write_pair(name, folder_hr, folder_lr, scale):
    from basicattn.utils.img_util import imwrite, mod_crop  # lazy: cheap
    from basicattn.utils.matlab_imresize import imresize  # lazy: cheap

    hr = mod_crop(load_photo(name), scale)
    imwrite(osp.join(folder_hr, f'{name}.png'), hr)
    imwrite(osp.join(folder_lr, f'{name}.png'), imresize(hr, scale=1.0 / scale))


def prepare_demo_data(root='datasets/demo', scale=2, progress=True):
    """Write the demo's HR/LR folders and training LMDBs under ``root``.

    Existing complete outputs are kept (a second call costs nothing).

    Args:
        root (str): Output folder.
        scale (int): Downscaling factor of the LR images.
        progress (bool): Show the LMDB progress bars.

    Returns:
        dict: Paths ``train_hr``, ``train_lr``, ``train_hr_lmdb``,
        ``train_lr_lmdb``, ``heldout_hr``, ``heldout_lr``.
    """
    from basicattn.data.lmdb_builder import build_lmdb_from_folder  # lazy: cheap

    paths = dict(
        train_hr=osp.join(root, 'train', 'HR'),
        train_lr=osp.join(root, 'train', f'LR_x{scale}'),
        heldout_hr=osp.join(root, 'heldout', 'HR'),
        heldout_lr=osp.join(root, 'heldout', f'LR_x{scale}'),
        train_hr_lmdb=osp.join(root, 'train_HR.lmdb'),
        train_lr_lmdb=osp.join(root, f'train_LR_x{scale}.lmdb'),
    )
    for names, hr_key, lr_key in (
        (TRAIN_PHOTOS, 'train_hr', 'train_lr'),
        (HELDOUT_PHOTOS, 'heldout_hr', 'heldout_lr'),
    ):
        for name in names:
            if not (
                osp.isfile(osp.join(paths[hr_key], f'{name}.png'))
                and osp.isfile(osp.join(paths[lr_key], f'{name}.png'))
            ):
                os.makedirs(paths[hr_key], exist_ok=True)
                os.makedirs(paths[lr_key], exist_ok=True)
                _write_pair(name, paths[hr_key], paths[lr_key], scale)
    for src, dst in (('train_hr', 'train_hr_lmdb'), ('train_lr', 'train_lr_lmdb')):
        if not osp.isfile(osp.join(paths[dst], 'meta_info.txt')):
            build_lmdb_from_folder(
                paths[src], paths[dst], overwrite=osp.exists(paths[dst]), progress=progress
            )
    return paths
