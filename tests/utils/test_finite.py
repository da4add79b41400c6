"""Finding NaN and inf in tensors (basicattn/utils/finite.py)."""

import torch

from basicattn.utils.finite import describe_values, first_non_finite, is_finite


def test_first_non_finite_names_the_first_tensor_and_what_it_holds():
    named = [
        ('a', torch.ones(3)),
        ('steps', torch.tensor(5)),  # integers are skipped
        ('b', torch.tensor([1.0, float('nan'), float('inf')])),
        ('c', torch.tensor([float('inf')])),
    ]
    assert first_non_finite(named) == ('b', 'nan and inf (2 of 3 values)')
    assert first_non_finite(named[:2]) is None
    assert first_non_finite([]) is None


def test_large_finite_values_are_finite():
    """A 2-norm of 1e30 overflows float32; the max-abs check does not."""
    huge = torch.full((4, 4), 1e30)
    assert first_non_finite([('w', huge), ('h', huge.half().float().nan_to_num(0))]) is None
    assert first_non_finite([('w', huge.double() * 1e300)]) == ('w', 'inf (16 of 16 values)')


def test_is_finite_and_describe():
    assert is_finite(torch.zeros(2)) and is_finite(torch.tensor([1, 2]))
    assert not is_finite(torch.tensor([float('nan')]))
    assert describe_values(torch.tensor(float('nan'))) == 'nan'
    assert describe_values(torch.ones(2)) == 'finite'
