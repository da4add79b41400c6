"""Signatures of registered classes and YAML values checked against them."""

import inspect
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple, Union

import pytest

from basicattn.config.signature_check import describe_expected, explicit_parameters, value_fits


class Plain:
    def __init__(self, width, depth=2, *extra, name: str = 'x', scale: float = 1.0):
        pass


class Forwarding(Plain):
    """Forwards everything to Plain: Plain's signature is the real one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)


class AcceptsAnything:
    def __init__(self, a=1, **kwargs):
        pass


class Annotated:
    def __init__(
        self,
        a: int,
        b: float = 1.0,
        c: Optional[int] = 3,
        d: Tuple[int, int] = (1, 1),
        e: Literal['x', 'y'] = 'x',
        f: bool = False,
        g=5,
        h=0.5,
        i='s',
        j=True,
        k=None,
        m: List[float] = None,
        n: Union[int, str] = 0,
        o: int | None = None,
        p: Any = 0,
        q: Dict[str, int] = None,
        r: Sequence[int] = (),
        s=(1, 2),
    ):
        pass


def test_plain_class():
    params = explicit_parameters(Plain)
    assert list(params) == ['width', 'depth', 'name', 'scale']
    assert params['width'].default is inspect.Parameter.empty
    assert params['depth'].default == 2
    assert params['name'].annotation is str


def test_forwarding_init_resolved_through_mro():
    assert list(explicit_parameters(Forwarding)) == ['width', 'depth', 'name', 'scale']


def test_mmengine_multistep_lr_real_signature():
    from mmengine.optim import MultiStepLR

    params = explicit_parameters(MultiStepLR)
    assert params is not None
    assert {'optimizer', 'milestones', 'gamma', 'begin', 'end', 'by_epoch'} <= set(params)
    assert params['gamma'].default == 0.1
    assert params['milestones'].default is inspect.Parameter.empty


def test_var_keyword_class_accepts_anything():
    assert explicit_parameters(AcceptsAnything) is None


def test_function_target():
    def build(x, y: int = 2, **kw):
        pass

    def strict(x, y: int = 2):
        pass

    assert explicit_parameters(build) is None
    assert list(explicit_parameters(strict)) == ['x', 'y']


def test_string_annotations_are_resolved():
    ns = {}
    exec(
        'from __future__ import annotations\n'
        'class Late:\n'
        '    def __init__(self, a: int = 1, b: Missing = 2):\n'
        '        pass\n',
        ns,
    )
    params = explicit_parameters(ns['Late'])
    # an unresolvable hint falls back to the default's type instead of crashing
    assert set(params) == {'a', 'b'}
    assert value_fits(params['b'], 3) and not value_fits(params['b'], 'x')


def test_builtin_forwarding_init():
    assert explicit_parameters(dict) is None


P = explicit_parameters(Annotated)


@pytest.mark.parametrize(
    'name, value, fits',
    [
        # bool is not an int (and an int is not a bool)
        ('a', 1, True),
        ('a', True, False),
        ('a', 1.5, False),
        ('a', '1', False),
        ('f', True, True),
        ('f', 1, False),
        ('g', 5, True),
        ('g', True, False),
        ('g', 5.0, False),
        ('j', False, True),
        ('j', 0, False),
        # float accepts int, not bool
        ('b', 2, True),
        ('b', 2.5, True),
        ('b', True, False),
        ('b', 'x', False),
        ('h', 1, True),
        ('h', '0.5', False),
        # Optional / Union / PEP 604
        ('c', None, True),
        ('c', 4, True),
        ('c', 'x', False),
        ('n', 1, True),
        ('n', 'a', True),
        ('n', 1.5, False),
        ('o', None, True),
        ('o', 3, True),
        ('o', 'x', False),
        # tuples and lists accept YAML lists; sequences too
        ('d', [1, 2], True),
        ('d', (1, 2), True),
        ('d', 3, False),
        ('m', [0.1], True),
        ('m', 0.1, False),
        ('m', None, True),
        ('r', [1], True),
        ('r', 1, False),
        ('s', [3, 4], True),
        ('s', 3, False),
        # Literal
        ('e', 'x', True),
        ('e', 'y', True),
        ('e', 'z', False),
        # strings by default
        ('i', 'other', True),
        ('i', 3, False),
        # unknown means fitting
        ('k', 3, True),
        ('k', 'x', True),
        ('p', 0, True),
        ('q', {'a': 1}, True),
        ('q', [1], False),
    ],
)
def test_value_fits(name, value, fits):
    assert value_fits(P[name], value) is fits


def test_none_for_required_and_defaulted_parameters():
    def f(req, num=3, anything=None, opt: Optional[float] = 1.0, typed: float = 1.0):
        pass

    params = explicit_parameters(f)
    assert value_fits(params['req'], None)  # nothing rules it out
    assert not value_fits(params['num'], None)  # default's type is int
    assert value_fits(params['anything'], None)
    assert value_fits(params['opt'], None)
    assert not value_fits(params['typed'], None)


def test_any_annotation_accepts_every_value():
    assert value_fits(P['p'], 'anything')


@pytest.mark.parametrize(
    'name, text', [('a', 'int'), ('b', 'float'), ('g', 'int'), ('k', 'any'), ('i', 'str')]
)
def test_describe_expected(name, text):
    assert describe_expected(P[name]) == text


def test_describe_expected_generic_annotations():
    assert 'Literal' in describe_expected(P['e'])
    assert 'int' in describe_expected(P['o'])
