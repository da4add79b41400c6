"""The shared argument checks (basicattn/utils/bounds.py)."""

from typing import Literal

import numpy as np
import pytest

from basicattn.utils.bounds import (
    check_choice,
    check_positive_int,
    check_positive_number,
    is_int,
    is_positive_int,
)


@pytest.mark.parametrize('value', [1, 7, np.int64(3)])
def test_positive_ints_pass(value):
    assert is_positive_int(value)
    assert check_positive_int(value, 'n') == value


@pytest.mark.parametrize('value', [0, -1, 1.0, True, '2', None])
def test_others_are_refused_with_owner_and_name(value):
    assert not is_positive_int(value)
    with pytest.raises(ValueError, match=r'^DASAA: attn_chunk must be a positive int, got '):
        check_positive_int(value, 'attn_chunk', 'DASAA')


def test_none_only_where_allowed():
    assert check_positive_int(None, 'chunk_size', allow_none=True) is None
    with pytest.raises(ValueError, match='a positive int or None, got 0'):
        check_positive_int(0, 'chunk_size', allow_none=True)


def test_bool_is_not_an_int():
    assert is_int(3) and is_int(np.int32(3)) and not is_int(False)


def test_choice_from_literal_and_list():
    Mode = Literal['a', 'b']
    assert check_choice('a', 'mode', Mode, 'DAN') == 'a'
    with pytest.raises(
        ValueError, match=r"DAN: mode='c' is not supported; allowed values are \('a', 'b'\)"
    ):
        check_choice('c', 'mode', Mode, 'DAN')
    with pytest.raises(ValueError, match=r'^x=3 is not supported'):
        check_choice(3, 'x', [1, 2])


@pytest.mark.parametrize('value', [1, 0.5, 2.0, np.float64(1.6), np.int64(3)])
def test_check_positive_number_accepts(value):
    assert check_positive_number(value, 'sigma', 'Owner') == value


@pytest.mark.parametrize('value', [0, -1.0, float('inf'), float('nan'), True, '1', None])
def test_check_positive_number_names_owner_and_value(value):
    with pytest.raises(ValueError, match=r'^Owner: sigma must be a positive number, got '):
        check_positive_number(value, 'sigma', 'Owner')
