"""basicattn/utils/strict_json.py: non-finite metric values survive a strict JSON round trip."""

import json
import math

import pytest

from basicattn.utils.strict_json import dumps, number


def _refuse(constant):
    raise AssertionError(f'non-standard JSON constant {constant}')


def test_non_finite_floats_become_strings_that_read_back():
    text = dumps({'a': {'psnr': math.inf, 'x': [-math.inf, math.nan, 1.5]}, 'n': 3})
    loaded = json.loads(text, parse_constant=_refuse)
    assert loaded == {'a': {'psnr': 'inf', 'x': ['-inf', 'nan', 1.5]}, 'n': 3}
    assert number(loaded['a']['psnr']) == math.inf
    assert number(loaded['a']['x'][0]) == -math.inf
    assert math.isnan(number(loaded['a']['x'][1]))


@pytest.mark.parametrize('value', [True, 'abc', None, [1], {'a': 1}])
def test_number_refuses_what_is_not_a_metric_value(value):
    assert number(value) is None


def test_number_reads_plain_numbers():
    assert number(3) == 3.0 and number(0.25) == 0.25
