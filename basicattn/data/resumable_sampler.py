"""An infinite training sampler that resumes at any sample, without replay.

mmengine's resume replays the data loader batch by batch up to the saved
iteration, which loads and decodes every image seen so far. This sampler
instead derives the whole stream from ``(seed, position)``: pass ``k`` of the
global stream holds a seeded permutation of the dataset, and every sample
carries its own augmentation seed. Resuming is then setting the start
position (:meth:`set_start`), and a resumed run sees exactly the samples,
crops and flips that an uninterrupted one would have seen, whatever the
number of DataLoader workers.
"""

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from basicattn.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class ResumableInfiniteSampler(Sampler):
    """Yield ``(index, sample_seed)`` forever, sharded over ranks.

    Datasets that accept such tuples (e.g. ``PairedImageDataset``) draw all
    their randomness from ``np.random.default_rng(sample_seed)``.

    Args:
        dataset (Sized): The dataset.
        shuffle (bool): Permute each pass (else sequential order).
        seed (int, optional): Stream seed; None draws one shared by all ranks.
    """

    def __init__(self, dataset, shuffle=True, seed=None):
        super().__init__()
        self.size = len(dataset)
        if self.size == 0:
            raise ValueError(f'{type(dataset).__name__} is empty: nothing to sample')
        self.rank, self.world_size = get_dist_info()
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.start = 0

    def set_start(self, samples_per_rank):
        """Begin the next iteration after ``samples_per_rank`` samples of this rank."""
        self.start = int(samples_per_rank)

    def set_epoch(self, epoch):
        """Accepted for mmengine's sampler-seed hook; the stream has no epochs."""

    def _pass_order(self, pass_index):
        if not self.shuffle:
            return np.arange(self.size)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + pass_index)
        return torch.randperm(self.size, generator=generator).numpy()

    def sample_seed(self, position):
        """Augmentation seed of the sample at global stream ``position``."""
        return (self.seed % (2**31)) * (2**32) + position

    def __iter__(self):
        position = self.start * self.world_size + self.rank
        cached_pass, order = None, None
        while True:
            pass_index, offset = divmod(position, self.size)
            if pass_index != cached_pass:
                cached_pass, order = pass_index, self._pass_order(pass_index)
            yield int(order[offset]), self.sample_seed(position)
            position += self.world_size

    def __len__(self):
        return self.size
