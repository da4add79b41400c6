"""BasicSR's restart schedulers: values against BasicSR's formulas, option files, warm-up."""

import math

import pytest
import torch

from basicattn.engine.schedulers import CosineAnnealingRestartLR, MultiStepRestartLR
from basicattn.errors import OptionError


def _optimizer(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def _rates(make, steps, lr=1.0):
    opt = _optimizer(lr)
    scheduler = make(opt)
    rates = [opt.param_groups[0]['lr']]
    for _ in range(steps - 1):
        opt.step()
        scheduler.step()
        rates.append(opt.param_groups[0]['lr'])
    return rates


def _basicsr_multistep(t, lr, milestones, gamma, restarts, weights):
    """BasicSR's MultiStepRestartLR.get_lr, run step by step (its chainable definition)."""
    value = lr
    for step in range(t + 1):
        if step in restarts:
            value = lr * weights[restarts.index(step)]
        elif step in milestones:
            value = value * gamma ** milestones.count(step)
    return value


def _basicsr_cosine(t, lr, periods, weights, eta_min):
    """BasicSR's CosineAnnealingRestartLR.get_lr (closed form)."""
    ends = [sum(periods[: i + 1]) for i in range(len(periods))]
    index = next(i for i, end in enumerate(ends) if t <= end)
    start = 0 if index == 0 else ends[index - 1]
    return eta_min + weights[index] * 0.5 * (lr - eta_min) * (
        1 + math.cos(math.pi * (t - start) / periods[index])
    )


def test_multistep_restart_matches_basicsr():
    args = dict(milestones=[3, 5, 5, 9, 12], gamma=0.5, restarts=[0, 8], restart_weights=[1, 0.6])
    rates = _rates(lambda o: MultiStepRestartLR(o, by_epoch=False, **args), 15, lr=2e-4)
    expected = [
        _basicsr_multistep(t, 2e-4, [3, 5, 5, 9, 12], 0.5, [0, 8], [1, 0.6]) for t in range(15)
    ]
    assert rates == pytest.approx(expected, rel=1e-12)
    assert rates[5] == pytest.approx(2e-4 * 0.125)  # 5 is listed twice
    assert rates[8] == pytest.approx(2e-4 * 0.6)  # the restart


def test_multistep_restart_at_a_milestone_restarts():
    rates = _rates(
        lambda o: MultiStepRestartLR(
            o, milestones=[4], gamma=0.1, restarts=[4], restart_weights=[0.5], by_epoch=False
        ),
        6,
    )
    assert rates == pytest.approx([1, 1, 1, 1, 0.5, 0.5])


@pytest.mark.parametrize('eta_min', [0.0, 1e-7])
def test_cosine_restart_matches_basicsr(eta_min):
    periods, weights = [5, 4, 6], [1, 0.5, 0.25]
    rates = _rates(
        lambda o: CosineAnnealingRestartLR(
            o, periods=periods, restart_weights=weights, eta_min=eta_min, by_epoch=False
        ),
        16,
        lr=4e-4,
    )
    expected = [_basicsr_cosine(t, 4e-4, periods, weights, eta_min) for t in range(16)]
    assert rates == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert rates[5] == pytest.approx(eta_min, abs=1e-15)  # the end of the first period


def test_cosine_restart_stays_at_eta_min_after_the_last_period():
    rates = _rates(
        lambda o: CosineAnnealingRestartLR(o, periods=[3], eta_min=0.01, by_epoch=False), 6
    )
    assert rates[3:] == pytest.approx([0.01, 0.01, 0.01])


def test_warmup_multiplies_instead_of_being_overwritten():
    from mmengine.optim import LinearLR

    opt = _optimizer(1.0)
    warmup = LinearLR(opt, start_factor=0.25, by_epoch=False, begin=0, end=4)
    main = CosineAnnealingRestartLR(opt, periods=[10], by_epoch=False)
    rates = [opt.param_groups[0]['lr']]
    for _ in range(6):
        opt.step()
        warmup.step()
        main.step()
        rates.append(opt.param_groups[0]['lr'])
    factors = [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0]  # mmengine's LinearLR reaches 1 at end - 1
    expected = [f * _basicsr_cosine(t, 1.0, [10], [1], 0.0) for t, f in enumerate(factors)]
    assert rates == pytest.approx(expected, rel=1e-9)


def test_mismatched_restart_weights_are_one_error_line():
    with pytest.raises(OptionError, match='2 periods but 1 restart_weights'):
        CosineAnnealingRestartLR(_optimizer(), periods=[5, 5], restart_weights=[1])
    with pytest.raises(OptionError, match='1 restarts but 2 restart_weights'):
        MultiStepRestartLR(_optimizer(), milestones=[2], restarts=[0], restart_weights=[1, 1])


def _train_options(scheduler, tmp_path):
    """tests/tools/conftest.py's tiny EDSR options with ``scheduler`` (loaded by path)."""
    import importlib.util
    import os.path as osp

    path = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools', 'conftest.py')
    spec = importlib.util.spec_from_file_location('tools_conftest_for_schedulers', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    opt = module.tiny_options(str(tmp_path))
    opt['train']['scheduler'] = scheduler
    return opt


@pytest.mark.parametrize(
    'scheduler',
    [
        {'type': 'CosineAnnealingRestartLR', 'periods': [4, 4], 'restart_weights': [1, 0.5]},
        {'type': 'MultiStepRestartLR', 'milestones': [2], 'restarts': [0], 'gamma': 0.5},
    ],
)
def test_option_files_name_them(scheduler, tmp_path):
    from basicattn.config.options import validate_options
    from basicattn.engine.builder import schedule_cfg
    from basicattn.registry import PARAM_SCHEDULERS

    opt = validate_options(_train_options(scheduler, tmp_path), source='x.yml')
    *_, cfg = schedule_cfg(opt['train'])  # after the warm-up
    with PARAM_SCHEDULERS.switch_scope_and_registry('basicattn') as registry:
        built = registry.build(cfg, default_args={'optimizer': _optimizer()})
    assert type(built).__name__ == scheduler['type']


def test_unknown_keys_are_refused_by_the_validator(tmp_path):
    from basicattn.config.options import validate_options

    bad = {'type': 'CosineAnnealingRestartLR', 'periods': [4], 'eta_mn': 0}
    with pytest.raises(OptionError, match='eta_mn'):
        validate_options(_train_options(bad, tmp_path), source='x.yml')
