"""One parametrised check of every registered arch (cases in arch_cases.py).

Build, forward, backward, no NaN/Inf, output shape, and the exact parameter
count of the paper-sized model, which the arch states (``PAPER_PARAMS``,
:mod:`basicattn.archs.facts`).
"""

import pytest
import torch
from arch_cases import ARCH_CASES

from basicattn.archs.facts import arch_facts
from basicattn.registry import ARCHS


def registered_arch_names():
    ARCHS.import_from_location()
    return sorted(ARCHS.module_dict)


def test_every_registered_arch_has_a_case():
    missing = [name for name in registered_arch_names() if name not in ARCH_CASES]
    assert not missing, f'add cases to tests/archs/arch_cases.py for: {missing}'


@pytest.mark.parametrize('name', sorted(ARCH_CASES))
def test_arch_forward_backward_and_size(name):
    case = ARCH_CASES[name]
    torch.manual_seed(0)
    net = ARCHS.build(dict(type=name, **case['kwargs']))
    x = torch.rand(*case['input'], requires_grad=True)
    out = net(x)
    assert tuple(out.shape) == tuple(case['output'])
    assert torch.isfinite(out).all()
    out.mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert x.grad is not None and torch.isfinite(x.grad).all()
    facts = arch_facts(name)
    assert facts.takes_frames == (len(case['input']) == 5), 'TAKES_FRAMES disagrees with the input'
    assert facts.paper_params is not None, f'{name}: state PAPER_PARAMS on the class'
    kwargs, count = facts.paper_params
    paper_net = ARCHS.build(dict(type=name, **kwargs))
    assert sum(p.numel() for p in paper_net.parameters()) == count
