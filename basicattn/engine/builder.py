"""Turn validated options (BasicSR's shape) into an mmengine Runner.

The mapping, in short: ``network_g`` + ``train.losses`` + test-time keys of
``val`` become the model; ``datasets.train`` a resumable infinite loader;
``datasets.val*`` (training) or ``datasets.test_*``/``val*`` (testing) the
sets of a multi-set evaluation loop; ``train.optim_g``/``scheduler``/``amp``/``accumulate``
the optimizer wrapper and iteration-based schedulers; ``logger`` the logging,
checkpoint and TensorBoard hooks; ``path`` pretrained weights and resume.
"""

import os
import os.path as osp
from copy import deepcopy
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from basicattn.checkpoint import io as checkpoint_io
from basicattn.checkpoint import run_lock
from basicattn.checkpoint import work_dir as experiment_folder
from basicattn.checkpoint.state import check_checkpoint_scale, config_scale
from basicattn.config.compile_settings import check_compile
from basicattn.config.schema import LOADER_FIELDS
from basicattn.config.signature_check import explicit_parameters
from basicattn.config.test_settings import TestConfig
from basicattn.config.yaml_io import dump_yaml
from basicattn.data.data_check import check_dataset_paths, dataset_paths
from basicattn.engine import mixed_precision  # noqa: F401  (registers the optim wrappers)
from basicattn.engine.dist_env import DEFAULT_TIMEOUT_S, init_distributed, resolve_backend
from basicattn.engine.hook_order import check_hook_order
from basicattn.engine.logging_backends import vis_backends
from basicattn.engine.progress import QuietDumpsRunner
from basicattn.errors import CheckpointError, OptionError, UserError
from basicattn.metrics.metric_direction import best_rule
from basicattn.models.acceleration import training_channels_last
from basicattn.models.autocast import check_amp
from basicattn.registry import DATASETS, METRICS, MODELS
from basicattn.utils.atomic_file import atomic_write_bytes
from basicattn.utils.output_guard import refuse_outputs_over_inputs
from basicattn.utils.path_util import safe_path_component


def default_work_dir(opt: Mapping[str, Any], purpose: str) -> str:
    """``path.experiments_root`` or ``experiments/<name>`` (``results/<name>`` for tests)."""
    root = opt.get('path', {}).get('experiments_root')
    if root:
        return root
    return osp.join(
        'experiments' if purpose == 'train' else 'results', safe_path_component(opt['name'])
    )


def dataset_sets(opt: Mapping[str, Any], purpose: str) -> List[Tuple[str, Dict[str, Any]]]:
    """Return ``[(set_name, block)]`` of the evaluation sets for a purpose.

    The set name (``name:``, else the set key) names metrics and the folders
    of saved images, so it is made a safe path component
    (:func:`basicattn.utils.path_util.safe_path_component`).
    """
    datasets = opt.get('datasets', {})
    keys = [k for k in datasets if k.startswith('val')]
    if purpose == 'test':
        keys = [k for k in datasets if k.startswith('test')] + keys
    return [(safe_path_component(datasets[k].get('name') or k), datasets[k]) for k in keys]


def _split_loader_keys(block: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    block = deepcopy(block)
    loader = {k: block.pop(k, spec.default) for k, spec in LOADER_FIELDS.items()}
    return block, loader


def _dataset_cfg(block: Dict[str, Any]) -> Dict[str, Any]:

    params = explicit_parameters(DATASETS.get(block['type']))
    if params is not None and 'name' not in params:
        block.pop('name', None)
    return block


def train_dataloader_cfg(block: Mapping[str, Any]) -> Dict[str, Any]:
    """Loader config of the training set: infinite, resumable, stacked batches."""
    dataset, loader = _split_loader_keys(block)
    workers = loader['num_worker_per_gpu']
    return dict(
        dataset=_dataset_cfg(dataset),
        sampler=dict(type='ResumableInfiniteSampler', shuffle=loader['use_shuffle']),
        batch_size=loader['batch_size_per_gpu'],
        num_workers=workers,
        persistent_workers=bool(workers and loader['persistent_workers']),
        pin_memory=loader['pin_memory'],
        collate_fn=dict(type='default_collate'),
    )


def eval_dataloader_cfg(block: Mapping[str, Any]) -> Dict[str, Any]:
    """Loader config of an evaluation set: every image once, in order."""
    dataset, loader = _split_loader_keys(block)
    workers = loader['num_worker_per_gpu']
    return dict(
        dataset=_dataset_cfg(dataset),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=loader['batch_size_per_gpu'],
        num_workers=workers,
        persistent_workers=False,
        pin_memory=loader['pin_memory'],
        collate_fn=dict(type='default_collate'),
    )


def evaluator_cfg(opt: Mapping[str, Any], set_name: str) -> List[Dict[str, Any]]:
    """Metrics of ``val.metrics`` for one set, their names prefixed by the set."""
    metrics = opt.get('val', {}).get('metrics') or {}
    return [dict(block, prefix=set_name) for block in deepcopy(metrics).values()]


def _eval_loop_cfg(opt: Mapping[str, Any], purpose: str) -> Tuple[Any, Any, Any]:
    sets = dataset_sets(opt, purpose)
    if not sets:
        return None, None, None
    (first_name, first_block), rest = sets[0], sets[1:]
    loop = dict(
        type='MultiSetTestLoop' if purpose == 'test' else 'MultiSetValLoop',
        set_name=first_name,
        extra_sets=[
            dict(
                name=name, dataloader=eval_dataloader_cfg(block), evaluator=evaluator_cfg(opt, name)
            )
            for name, block in rest
        ],
    )
    return eval_dataloader_cfg(first_block), loop, evaluator_cfg(opt, first_name)


def best_metric_key(opt: Mapping[str, Any]) -> Optional[str]:
    """The key checkpoints are ranked by: first validation set, first metric.

    The best is the highest value, or the lowest for a metric that is better
    when lower (LPIPS; :mod:`basicattn.metrics.metric_direction`).
    """
    sets = dataset_sets(opt, 'train')
    metrics = opt.get('val', {}).get('metrics') or {}
    if not sets or not metrics:
        return None

    block = deepcopy(next(iter(metrics.values())))
    metric = METRICS.build(block)
    name = getattr(metric, 'name', None)
    return f'{sets[0][0]}/{name}' if isinstance(name, str) else None


def model_cfg(opt: Mapping[str, Any], purpose: str) -> Dict[str, Any]:
    """The model block: network, losses (training only) and test-time settings.

    The test-time settings are the ``val`` keys of the model's
    ``test_config_class`` (:mod:`basicattn.config.test_settings`), read by
    :meth:`~basicattn.config.test_settings.TestConfig.from_options`.

    Raises:
        OptionError: A test-time setting the model does not have (``val.sequence``
            on an image model) or a bad combination, naming the ``val`` key;
            a ``val.amp`` this machine cannot run.
    """

    model_type = opt.get('model_type', 'SRModel')
    config_class = getattr(MODELS.get(model_type), 'test_config_class', TestConfig)

    val = opt.get('val') or {}
    check_amp(val.get('amp'), 'val.amp')
    check_compile(val.get('compile', False), 'val.compile')
    cfg = dict(
        type=model_type,
        generator=deepcopy(opt['network_g']),
        test_cfg=config_class.from_options(opt.get('val'), model_type),
    )
    if purpose == 'train':
        train = opt['train']
        cfg['losses'] = deepcopy(train['losses'])
        cfg['train_cfg'] = train_speed_cfg(train, val)
    return cfg


def train_speed_cfg(train: Mapping[str, Any], val: Mapping[str, Any]) -> Dict[str, Any]:
    """The model's ``train_cfg``: ``train.channels_last`` and ``train.compile``.

    Checked here with the option names, before anything is built.

    Raises:
        OptionError: ``val.channels_last`` set and different from
            ``train.channels_last`` (the network has one memory format), or
            ``train.compile`` with inductor and no C++ compiler.
    """

    channels_last = training_channels_last(
        train.get('channels_last', False),
        val.get('channels_last'),
        ('train.channels_last', 'val.channels_last'),
    )
    compile_value = deepcopy(train.get('compile', False))
    check_compile(compile_value, 'train.compile')
    return dict(channels_last=channels_last, compile=compile_value)


def schedule_cfg(train: Mapping[str, Any]) -> Optional[List[Dict[str, Any]]]:
    """Warm-up and the main schedule as mmengine iteration-based schedulers."""
    schedulers = []
    warmup = train.get('warmup_iter', -1)
    if warmup and warmup > 0:
        schedulers.append(
            dict(type='LinearLR', start_factor=1.0 / warmup, by_epoch=False, begin=0, end=warmup)
        )
    if train.get('scheduler'):
        schedulers.append(dict(deepcopy(train['scheduler']), by_epoch=False))
    return schedulers or None


def optim_wrapper_cfg(train: Mapping[str, Any]) -> Dict[str, Any]:
    """The optimizer wrapper: optimizer, clipping, ``train.amp`` and ``train.accumulate``.

    Without ``amp`` it is mmengine's ``OptimWrapper`` (``AccumulatingOptimWrapper``
    when accumulating); with it
    :class:`~basicattn.engine.mixed_precision.MixedPrecisionOptimWrapper`
    (checked here, so that an ``amp`` this machine cannot run fails before
    anything is built). ``accumulate`` becomes mmengine's
    ``accumulative_counts``; the train loop reads that many batches per
    iteration (:class:`~basicattn.engine.loops.ResumableIterBasedTrainLoop`).

    Raises:
        OptionError: ``train.amp`` cannot run on this machine.
    """

    clip = train.get('clip_grad_norm')
    cfg: Dict[str, Any] = dict(
        type='OptimWrapper',
        optimizer=deepcopy(train['optim_g']),
        clip_grad=dict(max_norm=clip) if clip else None,
    )
    amp = train.get('amp')
    if amp:
        check_amp(amp, 'train.amp')
        cfg.update(type='MixedPrecisionOptimWrapper', amp=amp)
    accumulate = train.get('accumulate', 1)
    if accumulate > 1:
        cfg['accumulative_counts'] = accumulate
        if not amp:
            cfg['type'] = 'AccumulatingOptimWrapper'
    return cfg


def refuse_remote_checkpoints(opt: Mapping[str, Any]) -> None:
    """Refuse a URL in ``path.resume_state`` / ``path.pretrain_network_g`` up front."""
    paths = opt.get('path') or {}
    for key in ('resume_state', 'pretrain_network_g'):
        if paths.get(key):
            checkpoint_io.refuse_url(str(paths[key]), f'path.{key}')


def resume_checkpoint(
    opt: Mapping[str, Any], work_dir: str, auto_resume: bool
) -> Tuple[Optional[str], Optional[str]]:
    """The checkpoint a training run resumes from, and the option that named it.

    ``path.resume_state`` wins; with ``auto_resume`` the ``last_checkpoint``
    pointer of the work dir is resolved inside it (a URL there is refused),
    and when its file is missing or cannot resume, the newest valid
    ``iter_<N>.pth`` is taken (:func:`~.work_dir.find_resume_checkpoint`;
    refused when the folder has checkpoints but none is valid). Without
    either, or in a folder without checkpoints, the run starts afresh (with
    one line saying so for ``auto_resume``).

    Returns:
        tuple[str | None, str | None]: ``(file, option)`` or ``(None, None)``.
    """
    paths = opt.get('path') or {}
    if paths.get('resume_state'):
        return paths['resume_state'], 'path.resume_state'
    if not auto_resume:
        return None, None
    target, found = experiment_folder.find_resume_checkpoint(work_dir)
    from mmengine.dist import is_main_process

    if is_main_process():
        what = f'resuming from {target}' if target else 'nothing to resume, starting afresh'
        print(f'basicattn: --auto-resume: {found}; {what}', flush=True)
    return (target, f'--auto-resume ({experiment_folder.POINTER})') if target else (None, None)


def runner_cfg(
    opt: Mapping[str, Any],
    purpose: str = 'train',
    launcher: str = 'none',
    auto_resume: bool = False,
    stop_at: Optional[int] = None,
) -> Dict[str, Any]:
    """Build the dict of Runner arguments (see module docstring).

    Each part comes from one small builder: :func:`base_hooks_cfg`,
    :func:`default_hooks_cfg`, :func:`env_cfg`, :func:`model_wrapper_cfg`,
    :func:`model_cfg` and, by purpose, :func:`training_cfg` (with
    :func:`training_hooks_cfg`) or :func:`testing_cfg`.

    Args:
        opt (dict): Validated options (``read_options``).
        purpose (str): 'train' or 'test'.
        launcher (str): 'none', 'pytorch' or 'slurm'.
        auto_resume (bool): Resume from the newest checkpoint in the work dir.
        stop_at (int, optional): Checkpoint and stop after this iteration.

    Returns:
        dict: Keyword arguments of :class:`mmengine.runner.Runner`.
    """
    logger = opt.get('logger', {})
    refuse_remote_checkpoints(opt)
    work_dir = default_work_dir(opt, purpose)
    resume_from, resume_option = (
        resume_checkpoint(opt, work_dir, auto_resume) if purpose == 'train' else (None, None)
    )
    cfg = dict(
        model=model_cfg(opt, purpose),
        work_dir=work_dir,
        experiment_name=opt['name'],
        default_scope='basicattn',
        randomness=dict(seed=opt.get('manual_seed', 0), diff_rank_seed=False),
        launcher=launcher,
        env_cfg=env_cfg(opt.get('dist_params', {})),
        log_processor=dict(by_epoch=False, window_size=logger.get('print_freq', 100)),
        visualizer=dict(type='Visualizer', vis_backends=vis_backends(opt, purpose)),
        default_hooks=default_hooks_cfg(
            logger, best_metric_key(opt) if purpose == 'train' else None
        ),
        custom_hooks=base_hooks_cfg(opt, resume_option),
    )
    wrapper = model_wrapper_cfg(opt, purpose, launcher)
    if wrapper is not None:
        cfg['model_wrapper_cfg'] = wrapper
    if purpose == 'train':
        cfg.update(training_cfg(opt))
        cfg['custom_hooks'] += training_hooks_cfg(opt, stop_at)
        if resume_from:
            cfg.update(resume=True, load_from=resume_from)
    else:
        cfg.update(testing_cfg(opt))
    return cfg


def env_cfg(dist: Mapping[str, Any]) -> Dict[str, Any]:
    """mmengine's ``env_cfg``: the process group (``dist_params``), fork workers."""
    backend = resolve_backend(dist.get('backend', 'auto'))
    return dict(
        cudnn_benchmark=False,
        dist_cfg=dict(backend=backend, timeout=dist.get('timeout', DEFAULT_TIMEOUT_S)),
        mp_cfg=dict(mp_start_method='fork'),
    )


def default_hooks_cfg(logger: Mapping[str, Any], best_key: Optional[str]) -> Dict[str, Any]:
    """mmengine's default hooks, with the checkpoint settings of ``logger``."""
    return dict(
        runtime_info=dict(type='RuntimeInfoHook'),
        timer=dict(type='IterTimerHook'),
        sampler_seed=dict(type='DistSamplerSeedHook'),
        logger=dict(type='LoggerHook', interval=logger.get('print_freq', 100)),
        param_scheduler=dict(type='ParamSchedulerHook'),
        checkpoint=dict(
            type='CheckpointHook',
            by_epoch=False,
            interval=logger.get('save_checkpoint_freq', 5000),
            max_keep_ckpts=logger.get('max_keep_ckpts', -1),
            save_last=True,
            save_best=best_key,
            rule=best_rule(best_key or ''),
        ),
    )


def base_hooks_cfg(opt: Mapping[str, Any], resume_option: Optional[str]) -> List[Dict[str, Any]]:
    """The hooks of every run: folder, randomness, checkpoint encoding, lock, images, weights."""
    val = opt.get('val', {})
    paths = opt.get('path', {})
    hooks = [
        dict(type='ExperimentFolderHook', resume_option=resume_option),
        dict(type='RNGStateHook'),
        dict(type='PlainCheckpointHook'),
        dict(type='LatestCheckpointHook'),
        dict(type='RunLockHook'),
        dict(
            type='SRVisualizationHook',
            save_img=val.get('save_img', False),
            num_tb_images=val.get('num_tb_images', 2),
        ),
    ]
    if paths.get('pretrain_network_g'):
        hooks.append(
            dict(
                type='GeneratorLoadHook',
                path=paths['pretrain_network_g'],
                strict=paths.get('strict_load_g', True),
                param_key=paths.get('param_key_g'),
                scale=expected_scale(opt),
                **partial_load_args(paths),
            )
        )
    return hooks


def model_wrapper_cfg(
    opt: Mapping[str, Any], purpose: str, launcher: str
) -> Optional[Dict[str, Any]]:
    """DDP on CPU processes; with stages, DDP that allows parameters without gradients.

    None: mmengine's default wrapper (or none, with one process).
    """
    if launcher == 'none':
        return None
    wrapper = None
    if not torch.cuda.is_available():
        wrapper = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)
    if purpose == 'train' and opt['train'].get('stages'):  # frozen parameters get no gradient
        wrapper = wrapper or dict(type='MMDistributedDataParallel', broadcast_buffers=False)
        wrapper['find_unused_parameters'] = True
    return wrapper


def training_cfg(opt: Mapping[str, Any]) -> Dict[str, Any]:
    """The training data, loop, optimizer, schedule and validation of a run."""
    train = opt['train']
    val = opt.get('val', {})
    optim_wrapper = optim_wrapper_cfg(train)
    if train.get('paramwise_cfg'):
        optim_wrapper['paramwise_cfg'] = deepcopy(train['paramwise_cfg'])
    cfg = dict(
        train_dataloader=train_dataloader_cfg(opt['datasets']['train']),
        train_cfg=dict(
            type='ResumableIterBasedTrainLoop',
            max_iters=train['total_iter'],
            val_interval=val.get('val_freq', 5000),
        ),
        optim_wrapper=optim_wrapper,
        param_scheduler=schedule_cfg(train),
    )
    loader, loop, evaluator = _eval_loop_cfg(opt, 'train')
    if loader is not None:
        cfg.update(val_dataloader=loader, val_cfg=loop, val_evaluator=evaluator)
    return cfg


def training_hooks_cfg(opt: Mapping[str, Any], stop_at: Optional[int]) -> List[Dict[str, Any]]:
    """The hooks of training: stop-at, stages, EMA, the NaN guard, the network record.

    Their order relative to each other is the hooks' own priorities, checked
    by :func:`~basicattn.engine.hook_order.check_hook_order`.
    """
    train = opt['train']
    logger = opt.get('logger', {})
    hooks = []
    if stop_at:
        hooks.append(dict(type='StopAtIterHook', stop_iter=stop_at))
    if train.get('stages'):
        hooks.append(dict(type='MultiStageHook', stages=deepcopy(train['stages'])))
    if train.get('ema_decay'):
        hooks.append(
            dict(
                type='EMAHook',
                ema_type='ExponentialMovingAverage',
                momentum=1.0 - float(train['ema_decay']),
                update_buffers=True,
            )
        )
    rollback = train.get('nan_rollback') or {}
    hooks.append(
        dict(
            type='NonFiniteGuardHook',
            policy=train.get('nan_policy', 'stop'),
            lr_factor=rollback.get('lr_factor', 0.5),
            max_times=rollback.get('max_times', 3),
        )
    )
    hooks.append(
        dict(
            type='NetworkRecordHook',
            arch=deepcopy(opt['network_g']),
            scale=opt.get('scale'),
            save_weights=logger.get('save_weights'),
            max_keep=logger.get('max_keep_ckpts', -1),
        )
    )
    return hooks


def testing_cfg(opt: Mapping[str, Any]) -> Dict[str, Any]:
    """The test data, loop and evaluator (every ``test_*`` and ``val*`` set)."""
    loader, loop, evaluator = _eval_loop_cfg(opt, 'test')
    if loader is None:  # read_options(purpose='test') refuses such files
        raise OptionError(f'{opt.get("_source")}: datasets: no test_<name> or val set to test')
    return dict(test_dataloader=loader, test_cfg=loop, test_evaluator=evaluator)


def build_runner(
    opt: Mapping[str, Any],
    purpose: str = 'train',
    launcher: str = 'none',
    auto_resume: bool = False,
    stop_at: Optional[int] = None,
    verbose: bool = False,
) -> Runner:
    """Build the Runner for validated options, after starting distribution.

    Also writes the options (with defaults filled in) to the work dir as
    ``options.yml`` on the main process. mmengine's environment, config and
    hook dumps go to the log file only, and also to the console if ``verbose``.

    Raises:
        DataError: A dataset path of the run is missing (checked first, so
            nothing is built or created; see
            :func:`basicattn.data.data_check.check_dataset_paths`).
    """

    check_dataset_paths(opt, purpose)
    check_metrics(opt, purpose)
    dist = opt.get('dist_params', {})
    init_distributed(
        launcher,
        dist.get('backend', 'auto'),
        dist.get('port', 29500),
        dist.get('timeout', DEFAULT_TIMEOUT_S),
    )
    check_stop_at(opt, stop_at)
    work_dir = default_work_dir(opt, purpose)
    what = 'experiment folder' if purpose == 'train' else 'results folder'
    refuse_outputs_over_inputs(
        [(f'{what} (path.experiments_root)', work_dir)], dataset_inputs(opt, purpose)
    )
    check_pretrain_scale(opt)
    created = not osp.exists(work_dir)
    run_lock.lock_for_run(work_dir, what)  # before anything in it is read or moved
    try:
        cfg = runner_cfg(opt, purpose, launcher, auto_resume, stop_at)
        prepare_work_dir(opt, cfg, purpose)
        kwargs = {k: v for k, v in cfg.items() if k != 'model_wrapper_cfg'}  # read from cfg

        runner = QuietDumpsRunner(**kwargs, cfg=Config(deepcopy(cfg)), verbose=verbose)
        check_hook_order(runner.hooks)
    except BaseException:
        _unlock_unused(work_dir, created)
        raise
    _save_options(opt, runner.work_dir)
    return runner


def check_metrics(opt: Mapping[str, Any], purpose: str) -> None:
    """Build every ``val.metrics`` metric once, before anything is created.

    So that a metric that cannot be built (LPIPS without its weight files)
    stops the run with its one-line error before the experiment folder, the
    model or the data loaders exist. Nothing to check without evaluation sets.
    """
    metrics = (opt.get('val') or {}).get('metrics') or {}
    if not metrics or not dataset_sets(opt, purpose):
        return

    for block in metrics.values():
        METRICS.build(deepcopy(block))


def _unlock_unused(work_dir: str, created: bool) -> None:
    """Free the lock of a run that failed to start; remove a folder it only created."""
    run_lock.release(work_dir, remove=True)
    if created and osp.isdir(work_dir) and not os.listdir(work_dir):
        os.rmdir(work_dir)


def dataset_inputs(opt: Mapping[str, Any], purpose: str) -> List[Tuple[str, str]]:
    """``(option key, path)`` of every dataset file and folder a run reads."""

    return [(key, path) for key, path, _ in dataset_paths(opt, purpose)]


def run_inputs(opt: Mapping[str, Any], purpose: str) -> List[Tuple[str, str]]:
    """``(option key, path)`` of everything a run reads: datasets and checkpoints."""
    paths = opt.get('path') or {}
    found = dataset_inputs(opt, purpose)
    for key in ('pretrain_network_g', 'resume_state'):
        if paths.get(key):
            found.append((f'path.{key}', str(paths[key])))
    return found


def check_stop_at(opt: Mapping[str, Any], stop_at: Optional[int]) -> None:
    """Refuse a ``--stop-at`` that is not an iteration of the run (< 1 or > total_iter)."""
    if stop_at is None:
        return
    total = (opt.get('train') or {}).get('total_iter')
    if isinstance(stop_at, bool) or not isinstance(stop_at, int) or stop_at < 1:
        raise UserError(f'--stop-at {stop_at}: give the iteration to stop after (an integer >= 1)')
    if isinstance(total, int) and stop_at > total:
        raise UserError(
            f'--stop-at {stop_at} is beyond train.total_iter {total}, where the run ends anyway; '
            'give a smaller ITER or drop --stop-at'
        )


def partial_load_args(paths: Mapping[str, Any]) -> dict:
    """The ``GeneratorLoadHook`` arguments of ``path.partial_*_g`` (none when they are not used).

    Raises:
        OptionError: include/exclude patterns without ``path.partial_load_g: true``.
    """
    if not paths.get('partial_load_g'):
        for key in ('partial_include_g', 'partial_exclude_g'):
            if paths.get(key):
                raise OptionError(
                    f'path.{key} is set but path.partial_load_g is not true; set '
                    'path.partial_load_g: true for a transfer load, or drop the patterns'
                )
        return {}
    return dict(
        partial=True,
        include=paths.get('partial_include_g'),
        exclude=list(paths.get('partial_exclude_g') or ()),
    )


def check_pretrain_scale(opt: Mapping[str, Any]) -> None:
    """Refuse ``path.pretrain_network_g`` recorded for another scale than the option file's.

    A transfer load (``path.partial_load_g: true``) is a deliberate cross-scale
    load and is not refused (its log line says which scales met).
    """
    paths = opt.get('path') or {}
    partial_load_args(paths)
    path = paths.get('pretrain_network_g')
    if paths.get('partial_load_g'):
        return
    if not path or checkpoint_io.is_url(str(path)) or not osp.isfile(path):
        return  # a URL or a missing file gets its own message where it is loaded

    checkpoint = checkpoint_io.safe_load(path, option='path.pretrain_network_g')
    try:
        check_checkpoint_scale(checkpoint, path, expected_scale(opt), OPTION_SCALE)
    except CheckpointError as err:
        raise CheckpointError(
            f'{err}; to start from them on purpose (transfer learning), set '
            'path.partial_load_g: true'
        ) from None


#: How the scale of an option file is named in the scale check's message.
OPTION_SCALE = "the option file's scale"


def expected_scale(opt: Mapping[str, Any]) -> Optional[int]:
    """The scale a run's network works at: ``network_g``'s ``upscale``/``scale``, else ``scale``."""

    network = opt.get('network_g') if isinstance(opt.get('network_g'), Mapping) else {}
    scale = config_scale(network)
    if scale is None and isinstance(opt.get('scale'), int) and not isinstance(opt['scale'], bool):
        scale = opt['scale']
    return scale


def prepare_work_dir(opt: Mapping[str, Any], cfg: Mapping[str, Any], purpose: str) -> None:
    """Keep an earlier run's folder and confine removals to this run's folder.

    A run that does not resume (a fresh training run, any test run) never
    writes into a folder that already holds an earlier run's files: the main
    process renames it to ``<folder>_archived_<timestamp>`` (the other ranks
    wait; see :func:`~basicattn.checkpoint.work_dir.plan_fresh_run`). From then
    on the file backend removes nothing outside the work dir.
    """
    import torch.distributed as torch_dist
    from mmengine.dist import is_main_process

    folder = osp.abspath(cfg['work_dir'])
    if not cfg.get('resume'):
        keep = [(opt.get('path') or {}).get('pretrain_network_g')]
        plan = experiment_folder.plan_fresh_run(folder, purpose, keep)  # same on every rank
        if plan == 'archive' and is_main_process():
            what = 'experiment folder' if purpose == 'train' else 'results folder'
            archived = experiment_folder.archive_existing(folder, keep, what)
            if archived:  # the lock file went with the old folder: lock the new one
                run_lock.relock_after_archive(folder, archived, what)
        if torch_dist.is_available() and torch_dist.is_initialized():
            torch_dist.barrier()
    checkpoint_io.confine_removals(folder)


def _save_options(opt: Mapping[str, Any], work_dir: str) -> None:
    from mmengine.dist import is_main_process

    if is_main_process():
        text = dump_yaml({k: v for k, v in opt.items() if not k.startswith('_')})
        atomic_write_bytes(text.encode('utf-8'), osp.join(work_dir, 'options.yml'))
