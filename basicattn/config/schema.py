"""What an option file may contain: every key, its type, default and meaning.

The validator (``options.py``) checks files against this table and
``docs/options.md`` is written from it (``python tools/gen_option_docs.py``),
so the two can never disagree. Blocks with a ``type:`` key are checked
against the signature of the class their registry names, not here.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Optional, Tuple

from basicattn.config.compile_settings import COMPILE_VALUE
from basicattn.config.test_settings import option_settings
from basicattn.utils.bounds import AtLeast, Between, Bound

#: ``train.nan_policy`` values (basicattn/engine/nan_guard.py).
POLICIES = ('stop', 'rollback')

NoneType = type(None)
REQUIRED = object()


@dataclass
class Field:
    """A plain value; ``bound`` limits a number (see basicattn/utils/bounds.py)."""

    types: Tuple[type, ...]
    default: Any = REQUIRED
    doc: str = ''
    choices: Optional[Tuple[Any, ...]] = None
    bound: Optional[Bound] = None


@dataclass
class Section:
    """A mapping with fixed keys."""

    fields: Dict[str, Any]
    doc: str = ''
    optional: bool = True


@dataclass
class Typed:
    """A mapping with a ``type:`` naming a class in ``registry``; its other
    keys are that class's keyword arguments (``injected`` ones are filled in by
    basicattn and may not be given)."""

    registry: str
    doc: str = ''
    injected: Tuple[str, ...] = ()
    optional: bool = True
    #: Added to the "required ... is missing" message: how else to give it.
    missing_hint: str = ''


@dataclass
class MapOf:
    """A mapping of user-chosen names to ``item`` blocks."""

    item: Any
    doc: str = ''
    optional: bool = True


@dataclass
class ListOf:
    """A list of ``item`` sections (e.g. the stages of a schedule)."""

    item: Section
    doc: str = ''
    optional: bool = True


@dataclass
class DatasetBlock:
    """A dataset: ``type`` (DATASETS), the loader keys below and the
    dataset's own keyword arguments."""

    doc: str = ''
    loader_fields: Dict[str, Field] = field(default_factory=dict)


LOADER_FIELDS = {
    'batch_size_per_gpu': Field((int,), 1, 'Samples per process and iteration.', bound=AtLeast(1)),
    'num_worker_per_gpu': Field(
        (int,),
        0,
        'DataLoader worker processes per process (0: load in the main process).',
        bound=AtLeast(0),
    ),
    'use_shuffle': Field((bool,), True, 'Shuffle the training stream (train only).'),
    'persistent_workers': Field((bool,), True, 'Keep workers alive between passes.'),
    'pin_memory': Field((bool,), False, 'Pin host memory (GPU training).'),
}

DATASET_KEY_DOC = (
    '`train`, `val` or `val_<name>` (validated during training), '
    '`test_<name>` (evaluated by tools/test.py; `val*` sets too). A set written as `~` '
    '(`--set datasets.test_set14=null`) is left out, e.g. one of a benchmark file you lack.'
)

STAGE_SECTION = Section(
    doc='One stage of `train.stages`.',
    fields={
        'name': Field((str, NoneType), None, 'Shown in the log.'),
        'until_iter': Field(
            (int,),
            REQUIRED,
            'The stage runs while the iteration count is below '
            'this; increasing, the last one reaching `train.total_iter`.',
            bound=AtLeast(1),
        ),
        'trainable': Field(
            (list, NoneType),
            None,
            "Shell-style patterns of the network's parameter names that train (None: all).",
        ),
        'frozen': Field((list,), [], 'Patterns frozen in this stage (taken out of `trainable`).'),
        'losses': Field(
            (list, NoneType), None, 'Names of `train.losses` summed in this stage (None: all).'
        ),
        'lr': Field(
            (float, int, NoneType),
            None,
            'Learning rate set at the stage start (None: keep).',
            bound=AtLeast(0),
        ),
        'reset_optimizer': Field(
            (bool,), True, 'Clear the optimizer state at the stage start (a fresh optimizer).'
        ),
    },
)

#: ``val.<setting>`` of the test-time settings, generated from
#: :mod:`basicattn.config.test_settings` (their one definition).
TEST_TIME_FIELDS = {
    setting.name: Field(
        setting.types,
        setting.default,
        setting.help,
        choices=setting.choices,
        bound=setting.bound,
    )
    for setting in option_settings()
}

OPTION_SCHEMA = Section(
    doc='The top level of an option file.',
    fields={
        'name': Field((str,), REQUIRED, 'Experiment name; outputs go to `experiments/<name>`.'),
        'model_type': Field((str,), 'SRModel', 'Registered model (MODELS) wrapping the network.'),
        'scale': Field(
            (int,),
            REQUIRED,
            'Upscaling factor; given to datasets and to the network '
            '(`upscale`/`scale`) when they do not set it.',
            bound=AtLeast(1),
        ),
        'manual_seed': Field(
            (int,), 0, 'Seed of every random number generator.', bound=Between(0, 2**32 - 1)
        ),
        'custom_imports': Field(
            (list, str),
            [],
            'Python modules to import before anything is '
            "built (your own archs, losses ...); the option file's folder is "
            'searched first.',
        ),
        'datasets': MapOf(
            DatasetBlock(loader_fields=LOADER_FIELDS), doc=DATASET_KEY_DOC, optional=False
        ),
        'network_g': Typed(
            'ARCHS',
            'The network: a registered arch and its arguments. `tools/test.py --checkpoint W` '
            'and `tools/infer.py` take it from the weights file when it is absent.',
            optional=False,
            missing_hint=(
                '; give it, or test weights that name their network with '
                '`tools/test.py --checkpoint W` (a basicattn or converted file), or '
                '`--set network_g.type=Bicubic` for the bicubic baseline'
            ),
        ),
        'path': Section(
            doc='Where weights come from and where results go.',
            fields={
                'pretrain_network_g': Field(
                    (str, NoneType),
                    None,
                    'Weights loaded into the network '
                    'before training/testing (a basicattn checkpoint).',
                ),
                'strict_load_g': Field(
                    (bool,), True, 'Require an exact key match when loading them.'
                ),
                'partial_load_g': Field(
                    (bool,),
                    False,
                    'Transfer load (basicattn/checkpoint/partial_load.py): keep every tensor whose '
                    'name and shape the network has, leave the rest at their initialisation and '
                    'log one line of what was skipped, by prefix. `strict_load_g` is then not '
                    'used, and weights recorded for another scale are allowed (x3 -> x4); '
                    'nothing fitting is an error.',
                ),
                'partial_include_g': Field(
                    (list, NoneType),
                    None,
                    'With `partial_load_g`: shell-style patterns of the parameter names to load '
                    '(null: all).',
                ),
                'partial_exclude_g': Field(
                    (list,),
                    [],
                    "With `partial_load_g`: patterns of names never loaded (`['upsampler.*']`).",
                ),
                'param_key_g': Field(
                    (str, NoneType),
                    None,
                    'Key of the weights in that file. null (default): found, so BasicSR and '
                    'basicattn files load without it (a bare state dict, else the first of '
                    '`state_dict`, `params_ema`, `params`, `model`); `""` for a bare state dict.',
                ),
                'resume_state': Field(
                    (str, NoneType),
                    None,
                    'Training checkpoint to resume from '
                    '(model, optimizer, schedulers, iteration, RNG, data position).',
                ),
                'experiments_root': Field(
                    (str, NoneType), None, 'Output folder (default `experiments/<name>`).'
                ),
            },
        ),
        'train': Section(
            doc='Training (required by tools/train.py).',
            fields={
                'optim_g': Typed(
                    'OPTIMIZERS',
                    'Optimizer (torch.optim name) and its arguments.',
                    injected=('params',),
                    optional=False,
                ),
                'scheduler': Typed(
                    'PARAM_SCHEDULERS',
                    'Learning-rate schedule, in iterations '
                    "(an mmengine scheduler such as MultiStepLR, or BasicSR's "
                    'MultiStepRestartLR / CosineAnnealingRestartLR).',
                    injected=(
                        'optimizer',
                        'param_name',
                        'by_epoch',
                        'begin',
                        'end',
                        'last_step',
                        'verbose',
                        'convert_to_iter_based',
                    ),
                ),
                'total_iter': Field(
                    (int,), REQUIRED, 'Number of training iterations.', bound=AtLeast(1)
                ),
                'warmup_iter': Field(
                    (int,),
                    -1,
                    'Linear learning-rate warm-up length in iterations (-1 or 0: none).',
                    bound=AtLeast(-1),
                ),
                'losses': MapOf(
                    Typed('LOSSES', 'A loss and its arguments.'),
                    'Named losses summed into the objective, e.g. `pixel: {type: L1Loss}`.',
                    optional=False,
                ),
                'ema_decay': Field(
                    (float, int),
                    0.0,
                    'Decay of the exponential moving average of '
                    'the weights (0: off); validation and checkpoints use the average.',
                    bound=Between(0, 1, max_exclusive=True),
                ),
                'clip_grad_norm': Field(
                    (float, int, NoneType),
                    None,
                    'Clip the gradient norm to this (null or 0: no clipping).',
                    bound=AtLeast(0),
                ),
                'paramwise_cfg': Field(
                    (dict, NoneType),
                    None,
                    'Per-parameter optimizer settings '
                    "(mmengine `paramwise_cfg`), e.g. EDVR's smaller lr for "
                    'offset predictors: `{custom_keys: {conv_offset: {lr_mult: 0.25}}}` '
                    '(keys match parameter names of the model, `generator.` first).',
                ),
                'amp': Field(
                    (str, NoneType),
                    None,
                    'Mixed-precision training: the forward pass and losses under autocast '
                    'to `bf16` (no loss scaling needed) or `fp16` (with a dynamic loss '
                    'scaler, saved in checkpoints); null: float32. Weights, optimizer state '
                    'and gradients stay float32; deformable sampling and attention softmax '
                    'statistics run in float32 (docs/ops.md). bf16 runs on CPU and recent '
                    'GPUs; an `amp` this machine cannot run is refused at start-up.',
                    choices=('bf16', 'fp16', None),
                ),
                'accumulate': Field(
                    (int,),
                    1,
                    'Gradient accumulation: sum the gradients of this many batches before '
                    'each optimizer step (effective batch: `accumulate` x '
                    '`batch_size_per_gpu` x processes). An iteration is one optimizer '
                    'step (as in traiNNer-redux): `total_iter`, `warmup_iter`, the '
                    '`scheduler` milestones, `stages`, EMA and every `*_freq` count '
                    'optimizer steps, and training reads `total_iter` x `accumulate` '
                    'batches. Checkpoints fall between optimizer steps, so resuming is '
                    'exact. Same result as one batch `accumulate` times larger for networks '
                    'without batch statistics.',
                    bound=AtLeast(1),
                ),
                'channels_last': Field(
                    (bool,),
                    False,
                    'Train with the network weights and the batches in channels_last '
                    '(NHWC) memory format (faster convolutions on CPU for A2N, DAN, EDSR; '
                    'docs/ops.md); validation during training uses the same format.',
                ),
                'compile': Field(
                    (bool, dict),
                    False,
                    'torch.compile the network for training: true or '
                    '`{mode, dynamic, backend}` (mode: default, reduce-overhead, '
                    'max-autotune ...; backend: inductor, or aot_eager without a C++ '
                    'compiler). Compiled once at start-up, fullgraph off (the graph '
                    'breaks are logged); checkpoints, EMA, `stages` and resuming are '
                    'unchanged. inductor without a C++ compiler is refused at start-up.',
                    bound=COMPILE_VALUE,
                ),
                'nan_policy': Field(
                    (str,),
                    'stop',
                    'What a loss, gradient or weight that is NaN or inf does (the line names '
                    'the loss term or tensor and the iteration; basicattn/engine/nan_guard.py): '
                    '`stop` ends the run with exit code 2, the last good checkpoint staying '
                    '`last_checkpoint`; `rollback` reloads the last good checkpoint (before the '
                    'first one: the state the run started from), multiplies the learning rate '
                    'by `nan_rollback.lr_factor` and goes on, at most `nan_rollback.max_times` '
                    'times (counted in the checkpoints, so a resumed run keeps counting). No '
                    'checkpoint with non-finite weights is ever written. fp16 steps whose '
                    'gradients overflow are skipped by the loss scaler, not failures.',
                    choices=POLICIES,
                ),
                'nan_rollback': Section(
                    doc='The rollbacks of `train.nan_policy: rollback`.',
                    fields={
                        'lr_factor': Field(
                            (float, int),
                            0.5,
                            'Factor of the learning rate at each rollback (every parameter '
                            'group and the schedule).',
                            bound=Between(0.01, 1, max_exclusive=True),
                        ),
                        'max_times': Field(
                            (int,),
                            3,
                            'Rollbacks allowed in a run; the next failure stops it.',
                            bound=AtLeast(1),
                        ),
                    },
                ),
                'stages': ListOf(
                    STAGE_SECTION,
                    "Multi-stage schedule (MANA's three stages, frozen "
                    'warm-ups): a list of stages, each set up at its first iteration by '
                    '`MultiStageHook` (basicattn/engine/stage_hook.py); resumable.',
                ),
            },
        ),
        'val': Section(
            doc='Validation during training and evaluation in tools/test.py.',
            fields={
                'val_freq': Field(
                    (int,), 5000, 'Validate every this many iterations.', bound=AtLeast(1)
                ),
                'save_img': Field((bool,), False, 'Write the super-resolved images as PNG.'),
                'num_tb_images': Field(
                    (int,), 2, 'Images per validation set sent to TensorBoard.', bound=AtLeast(0)
                ),
                **TEST_TIME_FIELDS,
                'metrics': MapOf(
                    Typed(
                        'METRICS',
                        'A metric and its arguments.',
                        injected=('prefix', 'collect_device'),
                    ),
                    'Named metrics, e.g. `psnr: {type: PSNR, crop_border: 4, '
                    'test_y_channel: true}`.',
                ),
            },
        ),
        'logger': Section(
            doc='Logging and checkpoints.',
            fields={
                'print_freq': Field(
                    (int,),
                    100,
                    'Progress line (losses, lr, ETA) every this many iterations.',
                    bound=AtLeast(1),
                ),
                'save_checkpoint_freq': Field(
                    (int,), 5000, 'Checkpoint every this many iterations.', bound=AtLeast(1)
                ),
                'max_keep_ckpts': Field(
                    (int,),
                    -1,
                    'Keep only the newest N periodic checkpoints, and as many '
                    '`net_g_<iter>` weights files (-1: all).',
                    bound=AtLeast(1, also=(-1,)),
                ),
                'save_weights': Field(
                    (str, NoneType),
                    None,
                    'Also write the generator weights alone beside each checkpoint: '
                    '`safetensors` (`net_g_<iter>.safetensors`, shareable, loads without '
                    'running code) or `pth` (`net_g_<iter>.pth`); EMA weights when '
                    '`train.ema_decay` is set; the arch config is recorded in them '
                    '(null: off).',
                    choices=('pth', 'safetensors'),
                ),
                'use_tb_logger': Field(
                    (bool,), True, 'Write TensorBoard scalars and sample images.'
                ),
                'wandb': Section(
                    doc='Weights & Biases logging of training (needs `pip install wandb`, '
                    'or the `wandb` extra); off while `project` is null.',
                    fields={
                        'project': Field(
                            (str, NoneType), None, 'W&B project to log to (null: no W&B).'
                        ),
                        'entity': Field((str, NoneType), None, 'W&B team or user (null: yours).'),
                        'resume_id': Field(
                            (str, NoneType), None, 'Id of a W&B run to continue (null: a new run).'
                        ),
                    },
                ),
            },
        ),
        'dist_params': Section(
            doc='Distributed training (`--launcher pytorch|slurm`).',
            fields={
                'backend': Field(
                    (str,),
                    'auto',
                    'nccl, gloo, or auto (nccl with CUDA, else gloo).',
                    choices=('auto', 'nccl', 'gloo', 'mpi'),
                ),
                'port': Field(
                    (int,), 29500, 'Master port for the slurm launcher.', bound=Between(1, 65535)
                ),
                'timeout': Field(
                    (int,),
                    600,
                    'Seconds a collective operation (gradient all-reduce, '
                    'barrier, metric gathering) may wait for the other processes before '
                    'the job fails, naming the ranks that did not answer.',
                    bound=AtLeast(1),
                ),
            },
        ),
    },
)


def iter_schema(section: 'Section' = OPTION_SCHEMA, prefix: str = '') -> Iterator[Tuple[str, Any]]:
    """Yield ``(key_path, spec)`` for every documented key, depth first."""
    for key, spec in section.fields.items():
        path = f'{prefix}{key}'
        yield path, spec
        if isinstance(spec, Section):
            yield from iter_schema(spec, path + '.')
        elif isinstance(spec, MapOf) and isinstance(spec.item, DatasetBlock):
            for loader_key, loader_spec in spec.item.loader_fields.items():
                yield f'{path}.<set>.{loader_key}', loader_spec
        elif isinstance(spec, ListOf):
            yield from iter_schema(spec.item, path + '.<i>.')
