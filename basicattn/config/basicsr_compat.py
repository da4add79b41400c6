"""BasicSR option keys: the one table of what each means in basicattn.

An option file written for BasicSR (``train_EDSR_Mx2.yml`` and friends)
holds keys that basicattn names differently (``dataset_enlarge_ratio`` is
our ``repeat``, ``train.pixel_opt`` a loss of ``train.losses``) and keys that
have no meaning here (``num_gpu``, ``prefetch_mode``). :data:`RULES` lists
every one of them once; :func:`apply_basicsr_compat` rewrites the options
by it before validation, so the validator never sees a BasicSR key and never
answers one with a misleading "did you mean". A key that is understood is
mapped silently; one that is ignored prints exactly one ``warning:`` line
saying why (:func:`warn_option`). The "Coming from BasicSR" table of
``docs/options.md`` is generated from :data:`RULES` as well.

BasicSR's dataset type names are mapped here too, not accepted by basicattn's
datasets: ``REDSDataset`` becomes ``REDSClipDataset``
(its ``val_partition`` our ``exclude_clips`` preset, ``dataroot_flow``
ignored), ``Vimeo90KDataset`` and ``VideoTestVimeo90KDataset`` become
``VimeoSeptupletDataset``. The datasets keep one set of argument names, and
every BasicSR name is in this one table.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from basicattn.config.signature_check import explicit_parameters
from basicattn.data.lmdb_io import SUPPORTED_BACKENDS
from basicattn.registry import DATASETS, LOSSES

#: ``(key path, message)`` of a problem found while mapping.
Problem = tuple[str, str]


def warn_option(path: str, message: str) -> None:
    """Print one ``warning: <key>: <message>`` line on stderr (every option warning).

    In a distributed job only the first process prints it (each reads the
    option file; ``RANK`` is set by torchrun, and from ``SLURM_PROCID`` by
    :mod:`~basicattn.engine.dist_env`), so a warning appears once, not once per GPU.
    """
    rank = os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))
    if rank.strip() not in ('', '0'):
        return
    print(f'warning: {path}: {message}', file=sys.stderr)


@dataclass
class Site:
    """One place in the options that a rule's key path matched."""

    opt: dict
    parent: dict
    key: str
    path: str
    ours: str | None  # the rule's target with the placeholders filled in
    problems: list[Problem]

    @property
    def value(self) -> Any:
        """The value written at this place."""
        return self.parent[self.key]

    def fail(self, message: str, path: str | None = None) -> None:
        """Record a problem at this key (or at ``path``)."""
        self.problems.append((path or self.path, message))


@dataclass(frozen=True)
class Rule:
    """A BasicSR key, what it is in basicattn, and how it is rewritten.

    ``basicsr`` and ``ours`` are key paths; ``<set>``, ``<name>`` and ``<x>``
    stand for any key (``ours`` reuses what they matched). ``ours`` is None
    for a key that is ignored. ``fix`` rewrites one matched place.
    """

    basicsr: str
    ours: str | None
    note: str
    fix: Callable[[Site, Rule], None]


def _put(site: Site, value: Any) -> None:
    """Move the value to ``site.ours``, refusing to overwrite a key written too."""
    *parents, last = site.ours.split('.')
    node = site.opt
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    del site.parent[site.key]
    if last in node:
        site.fail(f'BasicSR key for {site.ours}, which is given too; keep one of them')
        return
    node[last] = value


def _rename(site: Site, rule: Rule) -> None:
    _put(site, site.value)


def _ignore(site: Site, rule: Rule) -> None:
    del site.parent[site.key]
    warn_option(site.path, f'ignored: {rule.note}')


def _loss(site: Site, rule: Rule) -> None:

    block = site.value
    type_name = block.get('type') if isinstance(block, dict) else None
    if block is None:
        del site.parent[site.key]  # `pixel_opt: ~`: no such loss
    elif isinstance(type_name, str) and LOSSES.get(type_name) is not None:
        _put(site, block)
    else:
        del site.parent[site.key]
        warn_option(
            site.path,
            f'ignored: basicattn has no loss {type_name!r} '
            f'(losses: {", ".join(sorted(LOSSES.module_dict))})',
        )


def _io_backend(site: Site, rule: Rule) -> None:

    value, where = site.value, site.path
    if isinstance(value, dict):
        others = sorted(str(k) for k in value if k != 'type')
        if others:
            warn_option(where, f'ignored {", ".join(others)}: {rule.note}')
        where, value = f'{site.path}.type', value.get('type')
    if value not in SUPPORTED_BACKENDS:
        site.fail(f'{value!r} is not one of {list(SUPPORTED_BACKENDS)}', where)
        return
    site.parent[site.key] = value


def _takes(dataset_block: dict, argument: str) -> bool:
    """Whether the dataset class that a block names takes ``argument`` (True if unknown)."""

    target = DATASETS.get(dataset_block.get('type')) if 'type' in dataset_block else None
    params = explicit_parameters(target) if target is not None else None
    return params is None or argument in params


def _unless_taken(site: Site, rule: Rule) -> None:
    """Ignore the key where the block's dataset takes no argument of that name."""
    if not _takes(site.parent, site.key):
        del site.parent[site.key]
        warn_option(site.path, f'ignored: {rule.note}')


def _value(basicsr_names: str | tuple[str, ...], ours: str) -> Callable[[Site, Rule], None]:
    """A fix that replaces the value ``basicsr_names`` (one or a tuple) by ``ours``."""
    names = (basicsr_names,) if isinstance(basicsr_names, str) else basicsr_names

    def fix(site: Site, rule: Rule) -> None:
        if site.value in names:
            site.parent[site.key] = ours

    return fix


#: BasicSR's ``val_partition`` values and the ``exclude_clips`` preset of each.
VAL_PARTITIONS = {'REDS4': 'REDS4', 'official': 'REDSofficial'}


def _clips_in(block: dict) -> set[str] | None:
    """The clip names under a dataset block's ``dataroot_gt`` (None: not readable yet)."""
    import os.path as osp

    root = block.get('dataroot_gt')
    if not isinstance(root, str) or not root:
        return None
    if block.get('io_backend') == 'lmdb':
        meta = osp.join(root, 'meta_info.txt')
        if not osp.isfile(meta):
            return None
        from basicattn.data.lmdb_io import read_meta_info  # lazy: cheap

        return {key.split('/', 1)[0] for key, _, _ in read_meta_info(meta)}
    if not osp.isdir(root):
        return None  # named by the data check that follows validation
    return {entry.name for entry in os.scandir(root) if entry.is_dir()}


def _val_partition(site: Site, rule: Rule) -> None:
    """``val_partition`` -> ``exclude_clips``; its clips are checked here, under the user's key."""
    from basicattn.data.video_clips import CLIP_PRESETS  # lazy: cheap

    value = site.value
    if value not in VAL_PARTITIONS:
        site.fail(f"{value!r} is not one of {list(VAL_PARTITIONS)} (BasicSR's REDSDataset)")
        del site.parent[site.key]
        return
    found = _clips_in(site.parent)
    missing = [
        c for c in CLIP_PRESETS[VAL_PARTITIONS[value]] if found is not None and c not in found
    ]
    if missing:
        site.fail(
            f'{value}: clip(s) {", ".join(missing)} of the {value} partition are not among the '
            f'clips of {site.parent["dataroot_gt"]} ({len(found)} found); basicattn leaves the '
            'partition out of training and wants each of its clips to exist: give the full '
            'REDS training folder, or remove val_partition if your folder already lacks them'
        )
        del site.parent[site.key]
        return
    _put(site, VAL_PARTITIONS[value])


def _flow_lr_mul(site: Site, rule: Rule) -> None:
    """``train.flow_lr_mul: x`` -> ``train.paramwise_cfg.custom_keys.spynet.lr_mult: x``."""
    value = site.value
    del site.parent[site.key]
    if value == 1:
        return  # BasicSR's default: one learning rate for every parameter
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        site.fail(f'expected a number >= 0 (the lr multiplier of the flow network), got {value!r}')
        return
    paramwise = site.parent.get('paramwise_cfg')
    if paramwise is None:
        paramwise = site.parent['paramwise_cfg'] = {}
    if not isinstance(paramwise, dict):
        return  # the validator names train.paramwise_cfg
    custom = paramwise.setdefault('custom_keys', {})
    if not isinstance(custom, dict) or 'spynet' in custom:
        site.fail(
            'BasicSR key for train.paramwise_cfg.custom_keys.spynet, which is given too; '
            'keep one of them'
        )
        return
    custom['spynet'] = {'lr_mult': value}


def _dcn_lr_mul(site: Site, rule: Rule) -> None:
    value = site.value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        site.fail(f'expected a positive number, got {value!r}')
        del site.parent[site.key]
        return
    if value == 1:
        del site.parent[site.key]
        return
    if 'paramwise_cfg' in site.parent:
        del site.parent[site.key]
        site.fail('BasicSR key for train.paramwise_cfg, which is given too; keep one of them')
        return
    _put(site, value)


def _tsa_iter(site: Site, rule: Rule) -> None:
    """``tsa_iter: N`` -> two stages: the TSA fusion alone, then everything."""
    train, until = site.parent, site.value
    del train[site.key]
    if until is None or until is False or until == 0:
        return
    total = train.get('total_iter')
    if isinstance(total, float) and total.is_integer():
        total = int(total)  # `!!float 6e5`, as BasicSR writes it
    if isinstance(until, float) and until.is_integer():
        until = int(until)
    if isinstance(until, bool) or not isinstance(until, int) or until < 0:
        site.fail(f'expected a non-negative int, got {until!r}')
    elif 'stages' in train:
        site.fail('BasicSR key for train.stages, which is given too; keep one of them')
    elif not isinstance(total, int) or until >= total:
        site.fail(f'{until} must be smaller than train.total_iter ({total!r})')
    else:
        train['stages'] = [
            {'name': 'tsa', 'until_iter': until, 'trainable': ['fusion.*']},
            {'name': 'all', 'until_iter': total, 'reset_optimizer': False},
        ]


def _backend(site: Site, rule: Rule) -> None:
    if site.value != 'nccl':
        return
    import torch

    if not torch.cuda.is_available():
        site.parent[site.key] = 'gloo'
        warn_option(site.path, 'nccl needs CUDA, which is not available here: using gloo')


#: Every BasicSR key basicattn reads differently or not at all, in file order.
RULES: tuple[Rule, ...] = (
    Rule(
        'num_gpu',
        None,
        'the number of processes is given to the launcher: '
        '`bash tools/dist_train.sh N -opt FILE` (one process: `python tools/train.py`)',
        _ignore,
    ),
    Rule(
        'model_type: VideoBaseModel|EDVRModel',
        'model_type: VideoSRModel',
        "BasicSR's sliding-window video models; `network_g` must be an arch of basicattn "
        "(EDVR is, with BasicSR's arguments); EDVRModel's `train.dcn_lr_mul` and "
        '`train.tsa_iter` are below',
        _value(('VideoBaseModel', 'EDVRModel'), 'VideoSRModel'),
    ),
    Rule(
        'datasets.<set>.io_backend: {type: disk|lmdb}',
        'datasets.<set>.io_backend: disk|lmdb',
        'basicattn reads image files and LMDBs by their paths',
        _io_backend,
    ),
    Rule(
        'datasets.<set>.type: REDSDataset',
        'datasets.<set>.type: REDSClipDataset',
        'same keys (`num_frame`, `interval_list`, `random_reverse`, `gt_size`, ...) but '
        '`val_partition` (whose clips must exist) and `dataroot_flow` (below); a window '
        'past an end of a clip is completed by `padding` (default reflection) '
        'where BasicSR draws another centre frame',
        _value('REDSDataset', 'REDSClipDataset'),
    ),
    Rule(
        'datasets.<set>.type: Vimeo90KDataset',
        'datasets.<set>.type: VimeoSeptupletDataset',
        'same keys; GT LMDBs holding only `im4` (`vimeo90k_train_GT_only4th.lmdb`) work',
        _value('Vimeo90KDataset', 'VimeoSeptupletDataset'),
    ),
    Rule(
        'datasets.<set>.type: VideoTestVimeo90KDataset',
        'datasets.<set>.type: VimeoSeptupletDataset',
        'one item per septuplet: the middle `num_frame` LQ frames and the GT `im4`; '
        'reads LMDBs too (GT with only `im4`), which BasicSR refuses',
        _value('VideoTestVimeo90KDataset', 'VimeoSeptupletDataset'),
    ),
    Rule('datasets.<set>.dataset_enlarge_ratio', 'datasets.<set>.repeat', '', _rename),
    Rule('datasets.<set>.use_flip', 'datasets.<set>.use_hflip', '', _rename),
    Rule(
        'datasets.<set>.filename_tmpl',
        None,
        'only where the dataset takes no `filename_tmpl` '
        '(the video datasets name their frames themselves)',
        _unless_taken,
    ),
    Rule(
        'datasets.<set>.val_partition: REDS4|official',
        'datasets.<set>.exclude_clips: REDS4|REDSofficial',
        "the clips BasicSR's REDSDataset leaves out of training; each must exist under "
        '`dataroot_gt` (checked when the file is read, naming `val_partition`)',
        _val_partition,
    ),
    Rule(
        'datasets.<set>.dataroot_flow',
        None,
        "basicattn's datasets read no optical flow (BasicSR's EDVR files set `~`)",
        _ignore,
    ),
    Rule(
        'datasets.<set>.cache_data',
        None,
        'basicattn reads the frames of each item when it is needed',
        _ignore,
    ),
    Rule(
        'datasets.<set>.padding',
        None,
        'only where the dataset takes no `padding` (a Vimeo septuplet has its 7 frames; '
        "BasicSR's VideoTestVimeo90KDataset does not use it either)",
        _unless_taken,
    ),
    Rule(
        'datasets.<set>.prefetch_mode',
        None,
        'basicattn has no prefetcher; data come from DataLoader workers '
        '(`num_worker_per_gpu`, `pin_memory`)',
        _ignore,
    ),
    Rule('path.pretrain_model_g', 'path.pretrain_network_g', '', _rename),
    Rule('path.strict_load', 'path.strict_load_g', '', _rename),
    Rule(
        'train.<x>_opt',
        'train.losses.<x>',
        'when its `type` is a registered loss (`pixel_opt` -> `train.losses.pixel`); '
        'otherwise, e.g. `perceptual_opt` without a perceptual loss, ignored with a warning',
        _loss,
    ),
    Rule(
        'train.dcn_lr_mul',
        'train.paramwise_cfg.custom_keys.dcn.lr_mult',
        "EDVRModel's lr multiplier of the parameters whose name holds `dcn` (EDVR's DCN "
        'packs); 1 changes nothing and is dropped',
        _dcn_lr_mul,
    ),
    Rule(
        'train.tsa_iter',
        'train.stages',
        "EDVRModel's first N iterations train only the TSA fusion (`fusion.*`), then "
        "everything: `[{until_iter: N, trainable: ['fusion.*']}, {until_iter: total_iter}]`, "
        'the optimizer state kept across (as BasicSR); 0 or `~` is no such phase',
        _tsa_iter,
    ),
    Rule(
        'train.fix_flow',
        None,
        "BasicVSR's first iterations with the flow network (`spynet`, and IconVSR's `edvr`) "
        'frozen; the same with a multi-stage schedule: `train.stages: [{until_iter: N, '
        "frozen: ['*spynet*']}, {until_iter: TOTAL, reset_optimizer: false}]` "
        '(patterns must match parameter names of your arch)',
        _ignore,
    ),
    Rule(
        'train.flow_lr_mul',
        'train.paramwise_cfg.custom_keys.spynet.lr_mult',
        "a parameter-wise lr multiplier for parameters whose name holds `spynet` (BasicSR's "
        'flow network), as BasicSR applies it; 1 (its default) is dropped',
        _flow_lr_mul,
    ),
    Rule(
        'find_unused_parameters',
        None,
        "basicattn sets DDP's `find_unused_parameters` itself: on for a multi-process run "
        'whose `train.stages` freeze parameters, off otherwise',
        _ignore,
    ),
    Rule(
        'val.metrics.<name>.type: calculate_psnr',
        'val.metrics.<name>.type: PSNR',
        '`crop_border` and `test_y_channel` are the same',
        _value('calculate_psnr', 'PSNR'),
    ),
    Rule(
        'val.metrics.<name>.type: calculate_ssim',
        'val.metrics.<name>.type: SSIM',
        '`crop_border` and `test_y_channel` are the same',
        _value('calculate_ssim', 'SSIM'),
    ),
    Rule(
        'val.metrics.<name>.better',
        None,
        'basicattn knows which way each metric is better',
        _ignore,
    ),
    Rule('val.pbar', None, 'basicattn prints its own progress', _ignore),
    Rule(
        'val.suffix',
        None,
        'saved images are named by their key: `results/<set>/<key>.png` '
        '(`visualization/<set>/<key>_<iter>.png` during training), without a suffix',
        _ignore,
    ),
    Rule(
        'dist_params.backend: nccl',
        'dist_params.backend: gloo',
        'only when CUDA is not available (nccl needs it)',
        _backend,
    ),
)

_PLACEHOLDER = re.compile(r'<(\w+)>')


def _segment_pattern(segment: str) -> re.Pattern:
    parts = _PLACEHOLDER.split(segment)  # literal, name, literal, name, ...
    regex = ''.join(
        re.escape(part) if i % 2 == 0 else f'(?P<{part}>.+)' for i, part in enumerate(parts)
    )
    return re.compile(regex + '$')


def _sites(opt: dict, rule: Rule, problems: list[Problem]) -> Iterator[Site]:
    """Every place in ``opt`` that the rule's key path names."""
    segments = rule.basicsr.split(':', 1)[0].split('.')
    found = [(opt, [], {})]  # (node, path so far, placeholders)
    for depth, segment in enumerate(segments):
        pattern, last = _segment_pattern(segment), depth == len(segments) - 1
        matched = []
        for node, path, groups in found:
            if not isinstance(node, dict):
                continue
            for key in list(node):
                hit = pattern.match(str(key))
                if hit:
                    matched.append(
                        (node if last else node[key], path + [key], {**groups, **hit.groupdict()})
                    )
        found = matched
    for parent, path, groups in found:
        ours = rule.ours.split(':', 1)[0] if rule.ours else None
        if ours:
            ours = _PLACEHOLDER.sub(lambda m, found=groups: str(found[m.group(1)]), ours)
        yield Site(opt, parent, path[-1], '.'.join(map(str, path)), ours, problems)


def apply_basicsr_compat(opt: dict) -> list[Problem]:
    """Rewrite the BasicSR keys of ``opt`` in place, by :data:`RULES`.

    Keys basicattn understands are moved to its own names; keys it ignores are
    removed with one :func:`warn_option` line each.

    Args:
        opt (dict): Merged options (before validation).

    Returns:
        list[tuple[str, str]]: ``(key path, message)`` of values that cannot
        be mapped (an ``io_backend`` type that is neither disk nor lmdb, a
        BasicSR key given together with ours).
    """
    problems: list[Problem] = []
    for rule in RULES:
        for site in list(_sites(opt, rule, problems)):
            if site.key in site.parent:
                rule.fix(site, rule)
    return problems
