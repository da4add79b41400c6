"""The single-image super-resolution training/testing wrapper.

``SRModel`` holds a generator (any registered arch) and its pixel losses, and
implements the three modes mmengine's loops call:

* ``'loss'``: ``{'loss_<name>': tensor}`` for ``train_step``;
* ``'predict'``: a list of per-image result dicts for ``val_step`` /
  ``test_step`` and the metrics;
* ``'tensor'``: the raw generator output.

Test-time options (``test_cfg``): x8 self-ensemble, tiled inference for
images too large for memory, EDSR-style quadrant "chop" inference (to
reproduce papers measured that way), clamping to [0, 1].
"""

import torch
from mmengine.model import BaseModel
from torch import nn

from basicattn.registry import LOSSES, MODELS

from .chop_inference import chop_forward

_TEST_CFG_DEFAULTS = dict(
    self_ensemble=False,
    tile=None,
    tile_overlap=8,
    chop=False,
    chop_shave=10,
    clamp=True,
    sequence=False,
)


def dihedral_transform(x, index):
    """Apply the ``index``-th (0..7) of the 8 flips/rotations to ``x``.

    Bit 0 flips W, bit 1 flips H, bit 2 transposes H and W, in that order.

    Args:
        x (Tensor): (..., H, W).
        index (int): 0..7; 0 is the identity.

    Returns:
        Tensor: The transformed tensor (contiguous).
    """
    if index & 1:
        x = x.flip(-1)
    if index & 2:
        x = x.flip(-2)
    if index & 4:
        x = x.transpose(-2, -1)
    return x.contiguous()


def inverse_dihedral_transform(x, index):
    """Undo :func:`dihedral_transform` with the same ``index``.

    Args:
        x (Tensor): (..., H, W).
        index (int): 0..7.

    Returns:
        Tensor: The back-transformed tensor (contiguous).
    """
    if index & 4:
        x = x.transpose(-2, -1)
    if index & 2:
        x = x.flip(-2)
    if index & 1:
        x = x.flip(-1)
    return x.contiguous()


def _tile_starts(length, tile, overlap):
    """Start offsets of tiles of size ``tile`` covering ``[0, length)``.

    Consecutive tiles overlap by ``overlap`` pixels; the last tile is moved
    back to end at ``length`` (so it may overlap more). Returns the starts
    and the tile size actually used (``length`` when it is below ``tile``).
    """
    if length <= tile:
        return [0], length
    starts = list(range(0, length - tile, tile - overlap))
    starts.append(length - tile)
    return starts, tile


def _check_test_cfg(test_cfg):
    """Merge ``test_cfg`` into the defaults, raising on bad keys or values."""
    if test_cfg is None:
        test_cfg = {}
    if not isinstance(test_cfg, dict):
        raise TypeError(f'test_cfg must be a dict or None, got {type(test_cfg).__name__}')
    for key in test_cfg:
        if key not in _TEST_CFG_DEFAULTS:
            raise ValueError(
                f'unknown test_cfg key {key!r}; allowed keys are {sorted(_TEST_CFG_DEFAULTS)}'
            )
    cfg = dict(_TEST_CFG_DEFAULTS, **test_cfg)
    tile, overlap = cfg['tile'], cfg['tile_overlap']
    if tile is not None and (not isinstance(tile, int) or tile < 0):
        raise ValueError(
            f'test_cfg.tile must be an int >= 0 (0 or None turns tiling off), got {tile!r}'
        )
    if not isinstance(overlap, int) or overlap < 0:
        raise ValueError(f'test_cfg.tile_overlap must be an int >= 0, got {overlap!r}')
    if tile and overlap >= tile:
        raise ValueError(
            f'test_cfg.tile_overlap={overlap} must be smaller than test_cfg.tile={tile}'
        )
    if cfg['chop'] and tile:
        raise ValueError('test_cfg.chop and test_cfg.tile are alternatives; set only one of them')
    if not isinstance(cfg['chop_shave'], int) or cfg['chop_shave'] < 0:
        raise ValueError(f'test_cfg.chop_shave must be an int >= 0, got {cfg["chop_shave"]!r}')
    if cfg['sequence'] and (tile or cfg['chop'] or cfg['self_ensemble']):
        raise ValueError(
            'test_cfg.sequence carries a recurrent state over whole '
            'frames; it cannot be combined with tile, chop or '
            'self_ensemble'
        )
    for key in ('self_ensemble', 'clamp', 'chop', 'sequence'):
        if not isinstance(cfg[key], bool):
            raise ValueError(f'test_cfg.{key} must be true or false, got {cfg[key]!r}')
    return cfg


def _as_batch(x, name):
    """Stack a list of equally sized tensors (an unstacked collate)."""
    if isinstance(x, (list, tuple)):
        shapes = {tuple(t.shape) for t in x}
        if len(shapes) != 1:
            raise ValueError(
                f'{name}: cannot stack tensors of different shapes {sorted(shapes)} into a batch'
            )
        x = torch.stack(list(x))
    if not torch.is_tensor(x) or x.dim() < 4:
        raise ValueError(
            f'{name} must be an (N, C, H, W) tensor, got {getattr(x, "shape", type(x).__name__)}'
        )
    return x


@MODELS.register_module()
class SRModel(BaseModel):
    """Single-image super-resolution model: a generator and pixel losses.

    Args:
        generator (dict | nn.Module): The network, or its config, built with
            ``ARCHS.build`` (e.g. ``dict(type='EDSR', upscale=4)``).
        losses (dict | list | None): Loss configs (or modules) built with
            ``LOSSES.build``. A dict maps a name to a config, e.g.
            ``{'pixel': {'type': 'L1Loss', 'loss_weight': 1.0}}``, and logs
            ``loss_pixel``; a list is named ``loss_0``, ``loss_1``, ...
            Training needs at least one; None is fine for testing.
            Default: None.
        test_cfg (dict | None): Test-time options:

            - ``self_ensemble`` (bool): average the outputs of the 8
              flips/rotations of the input, each transformed back.
              Default: False.
            - ``tile`` (int | None): LR tile size for tiled inference;
              0 or None turns it off. Default: None.
            - ``tile_overlap`` (int): LR pixels shared by neighbouring
              tiles. Default: 8.
            - ``clamp`` (bool): clamp predictions to [0, 1]. Default: True.

            Unknown keys raise ``ValueError``. Default: None.
        data_preprocessor (dict | nn.Module | None): Default: None, mmengine's
            ``BaseDataPreprocessor``, which only moves tensors to the device.
        init_cfg (dict | None): mmengine initialisation config. Default: None.

    Data (a batch after ``default_collate``) is a dict with ``lq``
    (N, C, h, w), ``gt`` (N, C, H, W, absent at pure inference) and metadata
    such as ``key``, ``lq_path``, ``gt_path`` (lists of str).
    """

    def __init__(
        self, generator, losses=None, test_cfg=None, data_preprocessor=None, init_cfg=None
    ):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if isinstance(generator, nn.Module):
            self.generator = generator
        elif isinstance(generator, dict):
            from basicattn.engine.network import build_network

            self.generator = build_network(generator, 'network_g')
        else:
            raise TypeError(
                f'generator must be a config dict or an nn.Module, got {type(generator).__name__}'
            )
        self.losses = self._build_losses(losses)
        self.test_cfg = _check_test_cfg(test_cfg)
        # Names of the losses summed in training (None: all of them); set by
        # basicattn.engine.stage_hook.MultiStageHook per stage.
        self.active_losses = None

    @staticmethod
    def _build_losses(losses):
        if losses is None:
            return nn.ModuleDict()
        if isinstance(losses, (list, tuple)):
            losses = {str(i): cfg for i, cfg in enumerate(losses)}
        elif not isinstance(losses, dict):
            raise TypeError(
                'losses must be a dict of name -> loss config, a '
                f'list of configs or None, got '
                f'{type(losses).__name__}'
            )
        built = nn.ModuleDict()
        for name, cfg in losses.items():
            if not isinstance(name, str) or not name or '.' in name:
                raise ValueError(f'loss name {name!r} must be a non-empty string without dots')
            if isinstance(cfg, nn.Module):
                built[name] = cfg
            elif isinstance(cfg, dict):
                if 'type' not in cfg:
                    raise ValueError(f"losses.{name} has no 'type' key: {dict(cfg)}")
                built[name] = LOSSES.build(cfg)
            else:
                raise TypeError(
                    f'losses.{name} must be a config dict or an nn.Module, got {type(cfg).__name__}'
                )
        return built

    def forward(self, lq, gt=None, mode='tensor', **meta):
        """Run the model in one of mmengine's modes.

        Args:
            lq (Tensor): Low-quality input, (N, C, h, w) in [0, 1].
            gt (Tensor, optional): Ground truth, (N, C, H, W). Needed for
                ``mode='loss'``. Default: None.
            mode (str): ``'loss'``, ``'predict'`` or ``'tensor'``.
                Default: ``'tensor'``.
            **meta: Per-batch metadata (``key``, ``lq_path``, ``gt_path``,
                ...), copied per image into the ``'predict'`` results.

        Returns:
            dict[str, Tensor] | list[dict] | Tensor: For ``'loss'``,
            ``{'loss_<name>': scalar}``. For ``'predict'``, one dict per image
            with ``'pred'`` (C, H, W) float CPU tensor (clamped to [0, 1]
            unless ``test_cfg.clamp`` is false), ``'gt'`` (C, H, W) CPU tensor
            when given, and each metadata entry's item for that image (a str
            entry is copied as is). For ``'tensor'``, the generator output.
        """
        lq = _as_batch(lq, 'lq')
        if mode == 'loss':
            return self.loss(lq, gt)
        if mode == 'predict':
            return self.predict(lq, gt, **meta)
        if mode == 'tensor':
            return self.generator(lq)
        raise ValueError(f"mode={mode!r} is not supported; use 'loss', 'predict' or 'tensor'")

    def loss(self, lq, gt):
        """Compute every active loss between ``generator(lq)`` and ``gt``.

        Losses marked ``reads_generator_aux`` (:class:`AuxiliaryLoss`) take
        the generator's own terms instead: the generator is then called as
        ``generator(lq, return_aux=True)`` and returns ``(pred, aux)``. Only
        the losses named in :attr:`active_losses` are computed (all when it
        is None); a multi-stage schedule switches them per stage.

        Args:
            lq (Tensor): (N, C, h, w), or (N, T, C, h, w) for video archs.
            gt (Tensor): (N, C, H, W), the generator output size.

        Returns:
            dict[str, Tensor]: ``{'loss_<name>': scalar tensor}``.
        """
        if gt is None:
            raise ValueError("mode='loss' needs the ground truth: the batch has no 'gt' entry")
        if len(self.losses) == 0:
            raise ValueError(
                'SRModel has no losses to train with: set '
                "losses, e.g. {'pixel': {'type': 'L1Loss'}}"
            )
        active = {
            name: loss
            for name, loss in self.losses.items()
            if self.active_losses is None or name in self.active_losses
        }
        if not active:
            raise ValueError(
                f'no active loss: active_losses='
                f'{self.active_losses} but the losses are '
                f'{sorted(self.losses)}'
            )
        gt = _as_batch(gt, 'gt')
        if any(getattr(loss, 'reads_generator_aux', False) for loss in active.values()):
            pred, aux = self.generator(lq, return_aux=True)
        else:
            pred, aux = self.generator(lq), None
        if pred.shape != gt.shape:
            raise ValueError(
                f'generator output shape {tuple(pred.shape)} '
                f'differs from gt shape {tuple(gt.shape)}'
            )
        results = {}
        for name, loss in active.items():
            if getattr(loss, 'reads_generator_aux', False):
                results[f'loss_{name}'] = loss(aux)
            else:
                results[f'loss_{name}'] = loss(pred, gt)
        return results

    def predict(self, lq, gt=None, **meta):
        """Run :meth:`inference` and split the batch into per-image results.

        Args:
            lq (Tensor): (N, C, h, w).
            gt (Tensor, optional): (N, C, H, W). Default: None.
            **meta: Metadata; lists/tuples (and tensors) of length N are
                indexed per image, strings copied, anything else dropped.

        Returns:
            list[dict]: See :meth:`forward`.
        """
        return self.split_results(self.inference(lq), gt, meta)

    @staticmethod
    def split_results(pred, gt, meta):
        """One result dict per image of a predicted batch (see :meth:`predict`)."""
        pred = pred.float().cpu()
        if gt is not None:
            gt = _as_batch(gt, 'gt').cpu()
        n = pred.shape[0]
        results = []
        for i in range(n):
            item = {'pred': pred[i]}
            if gt is not None:
                item['gt'] = gt[i]
            for key, value in meta.items():
                if isinstance(value, str):
                    item[key] = value
                elif isinstance(value, (list, tuple)) and len(value) == n:
                    item[key] = value[i]
                elif torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == n:
                    item[key] = value[i].cpu()
            results.append(item)
        return results

    @torch.no_grad()
    def inference(self, lq):
        """Super-resolve ``lq`` with the test-time options of ``test_cfg``.

        Self-ensemble (if on) wraps tiling (if on): each of the 8 transformed
        inputs is run tiled, transformed back, and the 8 outputs averaged.

        Args:
            lq (Tensor): (N, C, h, w).

        Returns:
            Tensor: (N, C_out, H, W), clamped to [0, 1] if ``test_cfg.clamp``.
        """
        if self.test_cfg['self_ensemble']:
            out = None
            for index in range(8):
                res = self._run_generator(dihedral_transform(lq, index))
                res = inverse_dihedral_transform(res, index)
                out = res if out is None else out + res
            out = out / 8
        else:
            out = self._run_generator(lq)
        if self.test_cfg['clamp']:
            out = out.clamp(0, 1)
        return out

    def _run_generator(self, lq):
        if self.test_cfg['chop']:
            return chop_forward(self.generator, lq, self.test_cfg['chop_shave'])
        if self.test_cfg['tile']:
            return self.tiled_forward(lq, self.test_cfg['tile'], self.test_cfg['tile_overlap'])
        return self.generator(lq)

    def tiled_forward(self, lq, tile, overlap=8):
        """Run the generator tile by tile and stitch the outputs.

        The LR image is split into ``tile`` x ``tile`` tiles (smaller where
        the image is) that overlap by ``overlap`` pixels; the last tile of a
        row/column is moved back to end at the border, so any size works.
        Each tile keeps its output except a margin of ``overlap // 2`` LR
        pixels (times the scale) along the edges it shares with a neighbour,
        where zero padding makes it differ from the whole-image output; the
        kept regions cover the image and are averaged with a uniform weight
        where they overlap. The result therefore equals the untiled output
        (up to float rounding) when the generator's receptive field reaches
        at most ``overlap // 2`` LR pixels from the centre. The tiles of one
        position are run as one batch of N; the scale is the (integer) ratio
        of a tile's output size to its input size.

        Args:
            lq (Tensor): (N, C, h, w).
            tile (int): Tile size in LR pixels.
            overlap (int): Overlap in LR pixels, smaller than ``tile``.
                Default: 8.

        Returns:
            Tensor: (N, C_out, h * scale, w * scale).
        """
        if not 0 <= overlap < tile:
            raise ValueError(f'tile_overlap={overlap} must be >= 0 and smaller than tile={tile}')
        h, w = lq.shape[-2:]
        ys, th = _tile_starts(h, tile, overlap)
        xs, tw = _tile_starts(w, tile, overlap)
        if len(ys) == 1 and len(xs) == 1:
            return self.generator(lq)
        lo, hi = overlap // 2, overlap - overlap // 2
        out = weight = None
        s = None
        for y in ys:
            for x in xs:
                res = self.generator(lq[..., y : y + th, x : x + tw])
                if s is None:
                    s = res.shape[-2] // th
                    out = res.new_zeros(*res.shape[:-2], h * s, w * s)
                    weight = res.new_zeros(h * s, w * s)
                if tuple(res.shape[-2:]) != (th * s, tw * s) or s < 1:
                    raise ValueError(
                        'tiled inference needs an integer scale equal in H '
                        f'and W; the generator mapped a {th}x{tw} tile to '
                        f'{res.shape[-2]}x{res.shape[-1]}'
                    )
                # The kept LR region [y0, y1) x [x0, x1) of this tile.
                y0 = y + lo if y > 0 else y
                y1 = y + th - hi if y + th < h else y + th
                x0 = x + lo if x > 0 else x
                x1 = x + tw - hi if x + tw < w else x + tw
                out[..., y0 * s : y1 * s, x0 * s : x1 * s] += res[
                    ..., (y0 - y) * s : (y1 - y) * s, (x0 - x) * s : (x1 - x) * s
                ]
                weight[..., y0 * s : y1 * s, x0 * s : x1 * s] += 1
        return out / weight
