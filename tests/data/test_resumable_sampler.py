"""ResumableInfiniteSampler: a seeded stream that resumes at any sample."""

from itertools import islice

import pytest

from basicattn.data import resumable_sampler
from basicattn.data.resumable_sampler import ResumableInfiniteSampler


def take(sampler, n):
    return list(islice(iter(sampler), n))


def make(size=7, seed=3, shuffle=True, rank=0, world_size=1, monkeypatch=None):
    if monkeypatch is not None:
        monkeypatch.setattr(resumable_sampler, 'get_dist_info', lambda: (rank, world_size))
        return ResumableInfiniteSampler(range(size), shuffle=shuffle, seed=seed)
    sampler = ResumableInfiniteSampler(range(size), shuffle=shuffle, seed=seed)
    sampler.rank, sampler.world_size = rank, world_size
    return sampler


def test_registered():
    from basicattn.registry import DATA_SAMPLERS

    assert DATA_SAMPLERS.get('ResumableInfiniteSampler') is ResumableInfiniteSampler


def test_deterministic_for_a_seed():
    assert take(make(seed=3), 40) == take(make(seed=3), 40)
    assert [i for i, _ in take(make(seed=3), 40)] != [i for i, _ in take(make(seed=4), 40)]


def test_iterating_twice_restarts_the_stream():
    sampler = make()
    assert take(sampler, 20) == take(sampler, 20)


@pytest.mark.parametrize('shuffle', [True, False])
def test_every_index_once_per_pass(shuffle):
    size = 7
    indices = [i for i, _ in take(make(size=size, shuffle=shuffle), size * 5)]
    passes = [indices[p * size : (p + 1) * size] for p in range(5)]
    for order in passes:
        assert sorted(order) == list(range(size))
    if shuffle:
        assert len({tuple(order) for order in passes}) > 1  # each pass is permuted anew
    else:
        assert all(order == list(range(size)) for order in passes)


@pytest.mark.parametrize('k', [0, 1, 6, 7, 8, 23])
def test_set_start_continues_the_stream(k):
    full = take(make(), k + 15)
    sampler = make()
    sampler.set_start(k)
    assert take(sampler, 15) == full[k:]


@pytest.mark.parametrize('world_size', [2, 3])
def test_set_start_per_rank(world_size):
    for rank in range(world_size):
        full = take(make(rank=rank, world_size=world_size), 20)
        resumed = make(rank=rank, world_size=world_size)
        resumed.set_start(9)
        assert take(resumed, 11) == full[9:]


def test_two_ranks_partition_the_stream(monkeypatch):
    single = take(make(world_size=1), 40)
    rank0 = take(make(rank=0, world_size=2, monkeypatch=monkeypatch), 20)
    rank1 = take(make(rank=1, world_size=2, monkeypatch=monkeypatch), 20)
    assert rank0 == single[0::2]
    assert rank1 == single[1::2]
    seeds0 = {seed for _, seed in rank0}
    seeds1 = {seed for _, seed in rank1}
    assert not seeds0 & seeds1


def test_rank_from_dist_info(monkeypatch):
    sampler = make(rank=1, world_size=4, monkeypatch=monkeypatch)
    assert (sampler.rank, sampler.world_size) == (1, 4)


def test_seeds_unique_per_position():
    samples = take(make(size=3), 300)
    seeds = [seed for _, seed in samples]
    assert len(set(seeds)) == len(seeds)
    # the same index in different passes gets a different augmentation seed
    by_index = {}
    for index, seed in samples:
        by_index.setdefault(index, set()).add(seed)
    assert all(len(s) == 100 for s in by_index.values())
    assert all(isinstance(seed, int) and seed >= 0 for seed in seeds)


def test_sample_seeds_depend_on_stream_seed():
    assert {s for _, s in take(make(seed=1), 10)}.isdisjoint({s for _, s in take(make(seed=2), 10)})


def test_indices_are_python_ints():
    index, seed = take(make(), 1)[0]
    assert type(index) is int and type(seed) is int


def test_len_and_set_epoch():
    sampler = make(size=5)
    assert len(sampler) == 5
    before = take(sampler, 12)
    sampler.set_epoch(3)  # no effect: the stream has no epochs
    assert take(sampler, 12) == before


def test_empty_dataset_is_an_error():
    with pytest.raises(ValueError, match='empty'):
        ResumableInfiniteSampler([], seed=0)


def test_seed_none_draws_a_shared_seed(monkeypatch):
    monkeypatch.setattr(resumable_sampler, 'sync_random_seed', lambda: 1234)
    sampler = ResumableInfiniteSampler(range(4))
    assert sampler.seed == 1234
