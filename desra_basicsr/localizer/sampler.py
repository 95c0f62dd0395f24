"""Weighted draws across the localiser's training sources: how often each source's images are trained on.

The training set is mmengine's ``ConcatDataset`` of one :class:`~desra_basicsr.localizer.dataset.
DesraArtifactMaskDataset` per source (synthetic artifacts, a generator's outputs, clean images). A draw picks
source ``s`` with probability ``w_s / sum(w)``, then one of its images uniformly, with replacement, so a source's
share of the training images is its weight's share whatever its size (mmdetection's ``MultiSourceSampler`` reads its
``source_ratio`` the same way). The sampler is mmengine's ``InfiniteSampler`` with that draw in place of the
shuffle: seeded by the runner's seed, and under a distributed launch each rank takes every ``world_size``-th draw.
"""
import math
from typing import Iterator, Sequence, Sized

import torch
from mmengine.dataset import InfiniteSampler
from mmseg.registry import DATA_SAMPLERS


def source_sizes(dataset: Sized) -> list:
    """The number of samples of each source of a training set.

    Args:
        dataset (Sized): A ``ConcatDataset`` of sources (its ``datasets``), or one source.

    Returns:
        list[int]: One size per source.
    """
    return [len(part) for part in getattr(dataset, 'datasets', [dataset])]


@DATA_SAMPLERS.register_module()
class WeightedSourceSampler(InfiniteSampler):
    """Endless draws of a training set's samples, each source with its weight (see the module docstring).

    Args:
        dataset (Sized): A ``ConcatDataset`` of the sources, or one source.
        weights (Sequence[float]): One positive finite weight per source.
        seed (int | None): Random seed (mmengine's runner passes its own; None: a seed shared by the ranks).

    Raises:
        ValueError: If the weights do not match the sources, are not positive and finite, or a source is empty.
    """

    def __init__(self, dataset: Sized, weights: Sequence[float], seed=None) -> None:
        sizes = source_sizes(dataset)
        if len(weights) != len(sizes):
            raise ValueError(f'{len(weights)} source weight(s) for {len(sizes)} source(s)')
        if not all(math.isfinite(w) and w > 0 for w in weights) or not all(sizes):
            raise ValueError(f'source weights {list(weights)} must be positive and finite, and every source '
                             f'non-empty (sizes {sizes})')
        total = float(sum(weights))
        self.probabilities = torch.cat(
            [torch.full((n, ), w / (total * n), dtype=torch.float64) for n, w in zip(sizes, weights)])
        super().__init__(dataset, shuffle=True, seed=seed)

    def _infinite_indices(self) -> Iterator[int]:
        """Draw indices without end, ``len(dataset)`` at a time, from the seeded generator."""
        g = torch.Generator()
        g.manual_seed(self.seed)
        while True:
            yield from torch.multinomial(self.probabilities, self.size, replacement=True, generator=g).tolist()
