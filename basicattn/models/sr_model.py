"""The single-image super-resolution training/testing wrapper.

``SRModel`` holds a generator (any registered arch) and its pixel losses, and
implements the three modes mmengine's loops call:

* ``'loss'``: ``{'loss_<name>': tensor}`` for ``train_step``;
* ``'predict'``: a list of per-image result dicts for ``val_step`` /
  ``test_step`` and the metrics;
* ``'tensor'``: the raw generator output.

Test-time settings (``test_cfg``, a
:class:`~basicattn.config.test_settings.TestConfig`): x8 self-ensemble, tiled
inference for images too large for memory, EDSR-style quadrant "chop"
inference (to reproduce papers measured that way), clamping to [0, 1]; they
are run by :mod:`basicattn.models.tiled_inference`. ``test_cfg.amp`` runs
inference under autocast (bf16 / fp16); training under autocast is the
optimizer wrapper's (``train.amp``, :mod:`basicattn.engine.mixed_precision`).

Memory format and compilation (``train_cfg`` / ``test_cfg`` ``channels_last``
and ``compile``) are applied to the generator once, when the model is built
(:mod:`basicattn.models.acceleration`); inputs then follow the generator's
memory format.
"""

from typing import Any, ContextManager, Dict, List, Mapping, Optional, Sequence, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from basicattn.archs.build import build_network
from basicattn.config.compile_settings import compile_settings
from basicattn.config.test_settings import TestConfig
from basicattn.errors import OptionError
from basicattn.losses.finite_check import check_losses
from basicattn.losses.named_losses import LossesArg, build_named_losses
from basicattn.models import acceleration
from basicattn.models.autocast import autocast_region
from basicattn.models.tiled_inference import apply_test_cfg
from basicattn.registry import MODELS


def _as_batch(x: Union[Tensor, Sequence[Tensor]], name: str) -> Tensor:
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
        test_cfg (dict | TestConfig | None): Test-time settings, the fields
            of :class:`~basicattn.config.test_settings.TestConfig`
            (``self_ensemble``, ``tile``, ``tile_overlap``, ``chop``,
            ``chop_shave``, ``clamp``); kept as :attr:`test_cfg`, a
            ``TestConfig``. Unknown keys and bad values raise
            :class:`~basicattn.errors.OptionError` (a ``ValueError``).
            Default: None (all defaults).
        train_cfg (dict | None): Training-run settings of the generator:
            ``channels_last`` (bool) and ``compile`` (bool or
            ``{mode, dynamic, backend}``), the options ``train.channels_last``
            and ``train.compile``. In a training run the generator keeps
            ``train_cfg.channels_last`` in validation too (``test_cfg.channels_last``
            may only repeat it). Default: None (not a training run: the memory
            format is ``test_cfg.channels_last``'s, else the arch's preference).
        data_preprocessor (dict | nn.Module | None): Default: None, mmengine's
            ``BaseDataPreprocessor``, which only moves tensors to the device.
        init_cfg (dict | None): mmengine initialisation config. Default: None.

    Data (a batch after ``default_collate``) is a dict with ``lq``
    (N, C, h, w), ``gt`` (N, C, H, W, absent at pure inference) and metadata
    such as ``key``, ``lq_path``, ``gt_path`` (lists of str). ``val_step`` /
    ``test_step`` return the ``'predict'`` results with the input ``lq`` of
    each image added (a view of the loader's CPU batch, see
    :func:`_with_input`).
    """

    #: The class of :attr:`test_cfg`; subclasses with more settings replace it.
    test_config_class = TestConfig
    #: Times the test-time forwards when set (``tools/test.py`` sets a
    #: :class:`~basicattn.models.forward_timing.ForwardTimer`); None: untimed.
    forward_timer = None

    def __init__(
        self,
        generator: Union[dict, nn.Module],
        losses: LossesArg = None,
        test_cfg: Union[Mapping[str, Any], TestConfig, None] = None,
        train_cfg: Optional[Mapping[str, Any]] = None,
        data_preprocessor: Union[dict, nn.Module, None] = None,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if isinstance(generator, nn.Module):
            self.generator = generator
        elif isinstance(generator, dict):
            self.generator = build_network(generator, 'network_g')
        else:
            raise TypeError(
                f'generator must be a config dict or an nn.Module, got {type(generator).__name__}'
            )
        self.losses = build_named_losses(losses)
        self.test_cfg = self.test_config_class.from_dict(test_cfg, type(self).__name__)
        #: Whether the generator's weights and inputs are channels_last.
        self.channels_last = self._prepare_generator(train_cfg)
        self.use_losses(None)

    def use_losses(self, names: Optional[Sequence[str]]) -> None:
        """Sum only the losses ``names`` in training (None: all of them).

        A multi-stage schedule (:class:`~basicattn.engine.stage_hook.MultiStageHook`)
        calls this at each stage start; :attr:`active_losses` reads it back.

        Raises:
            ValueError: A name that is not one of the model's losses.
        """
        if names is not None:
            unknown = [n for n in names if n not in self.losses]
            if unknown:
                raise ValueError(
                    f'unknown loss(es) {unknown}; the losses are {sorted(self.losses)}'
                )
        #: Names of the losses summed in training (None: all); see :meth:`use_losses`.
        self.active_losses = None if names is None else list(names)

    def _prepare_generator(self, train_cfg: Optional[Mapping[str, Any]]) -> bool:
        """Set the generator's memory format and compile it (see ``train_cfg``).

        Returns:
            bool: Whether the generator is channels_last.

        Raises:
            OptionError: A bad ``train_cfg``, ``test_cfg.channels_last``
                contradicting ``train_cfg.channels_last``, or inductor without a
                C++ compiler.
        """
        test_cfg = self.test_cfg
        train_compile = None
        if train_cfg is None:
            channels_last = acceleration.resolve_channels_last(
                self.generator, test_cfg.channels_last
            )
        else:
            unknown = sorted(set(train_cfg) - {'channels_last', 'compile'})
            if unknown:
                raise OptionError(
                    f'unknown train_cfg key(s) {unknown}; allowed: channels_last, compile'
                )
            channels_last = acceleration.training_channels_last(
                train_cfg.get('channels_last', False), test_cfg.channels_last
            )
            train_compile = compile_settings(train_cfg.get('compile', False), 'train_cfg.compile')
        val_compile = compile_settings(test_cfg.compile, 'test_cfg.compile')
        acceleration.prepare_generator(self.generator, channels_last, train_compile, val_compile)
        return channels_last

    def forward(
        self, lq: Tensor, gt: Optional[Tensor] = None, mode: str = 'tensor', **meta: Any
    ) -> Union[Dict[str, Tensor], List[dict], Tensor]:
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
        lq = acceleration.input_memory_format(_as_batch(lq, 'lq'), self.channels_last)
        if mode == 'loss':
            return self.loss(lq, gt)
        if mode == 'predict':
            return self.predict(lq, gt, **meta)
        if mode == 'tensor':
            return self.generator(lq)
        raise ValueError(f"mode={mode!r} is not supported; use 'loss', 'predict' or 'tensor'")

    def loss(self, lq: Tensor, gt: Optional[Tensor]) -> Dict[str, Tensor]:
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

    def parse_losses(self, losses: Dict[str, Any]) -> Any:
        """mmengine's sum of the losses, after checking that each term is finite.

        A term that is NaN or inf raises
        :class:`~basicattn.losses.finite_check.NonFiniteTraining` naming it,
        before the backward pass (``train.nan_policy`` decides what follows).
        """

        check_losses(losses)
        return super().parse_losses(losses)

    def predict(self, lq: Tensor, gt: Optional[Tensor] = None, **meta: Any) -> List[dict]:
        """Run :meth:`inference` and split the batch into per-image results.

        Args:
            lq (Tensor): (N, C, h, w).
            gt (Tensor, optional): (N, C, H, W). Default: None.
            **meta: Metadata; lists/tuples (and tensors) of length N are
                indexed per image, strings copied, anything else dropped.

        Returns:
            list[dict]: See :meth:`forward`.
        """
        if self.forward_timer is None:
            return self.split_results(self.inference(lq), gt, meta)
        pred = self.forward_timer.measure(self.inference, lq)
        return self.split_results(pred, gt, meta)

    @staticmethod
    def split_results(
        pred: Tensor, gt: Optional[Tensor], meta: Mapping[str, Any]
    ) -> List[Dict[str, Any]]:
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

    def val_step(self, data: Any) -> List[dict]:
        """mmengine's ``val_step``; each result also carries its input ``lq``."""
        return _with_input(data, super().val_step(data))

    def test_step(self, data: Any) -> List[dict]:
        """mmengine's ``test_step``; each result also carries its input ``lq``."""
        return _with_input(data, super().test_step(data))

    @torch.no_grad()
    def inference(self, lq: Tensor) -> Tensor:
        """Super-resolve ``lq`` with the test-time settings :attr:`test_cfg`.

        See :func:`~basicattn.models.tiled_inference.apply_test_cfg`; with
        ``test_cfg.amp`` the generator runs under autocast (:meth:`autocast`);
        a 4-D ``lq`` is made channels_last when the generator is.

        Args:
            lq: (N, C, h, w).

        Returns:
            (N, C_out, H, W), clamped to [0, 1] if ``test_cfg.clamp``; float32
            under ``amp`` (the dtype of ``lq`` otherwise).
        """
        lq = acceleration.input_memory_format(lq, self.channels_last)
        with self.autocast(lq):
            out = apply_test_cfg(self.generator, lq, self.test_cfg)
        out = out.contiguous()  # NCHW, whatever format the generator ran in
        return out.float() if self.test_cfg.amp else out

    def autocast(self, like: Tensor) -> ContextManager[None]:
        """Autocast to ``test_cfg.amp`` on ``like``'s device (a no-op when it is None)."""

        return autocast_region(like.device.type, self.test_cfg.amp)


def _with_input(data: Any, results: Any) -> Any:
    """Add ``'lq'`` to each result dict: the batch's own CPU tensor, indexed.

    ``data`` is the batch as the data loader gave it, before the data
    preprocessor moved it to the device, so ``lq[i]`` is a view of memory
    already on the CPU: no copy, whether or not a hook uses it (the
    visualization hook shows it next to the output in TensorBoard). A result
    that already has ``'lq'``, or a batch without a per-image ``lq``, is left
    as it is.
    """
    lq = data.get('lq') if isinstance(data, Mapping) else None
    if lq is None or not isinstance(results, list) or len(lq) != len(results):
        return results
    for i, item in enumerate(results):
        if isinstance(item, dict) and 'lq' not in item and torch.is_tensor(lq[i]):
            item['lq'] = lq[i].cpu()  # a no-op for a CPU tensor
    return results
