"""A random crop that holds the image's edges about half as often as its middle.

mmseg's ``RandomCrop`` draws the crop's offset uniformly over the ``side - crop + 1`` positions that fit, so a pixel
on the image's edge is in a crop only when the offset is exactly 0 (or its largest value): about once in 233 crops
of 192 pixels from a 424-pixel side, against 192 times in 233 for a pixel in the middle. Inference in sliding windows
covers every pixel, the edges included. An artifact that sits on the edge, such as the thin coloured frame a
GAN-SR network with zero padding can paint around its output, is then almost never in a training crop, and the
localiser never learns it even from the generator that paints it (docs/benchmarks/localizer-fusion.md, "Edge
crops").

:class:`EdgeRandomCrop` draws the crop's *centre* uniformly over the whole image and shifts the crop inside it, so
each edge is in a crop with probability ``crop / (2 * side)`` (0.23 for the example above: half the rate of the
middle, which is in every crop whose centre falls within ``crop / 2`` of it).
"""
import numpy as np
from mmcv.transforms.utils import cache_randomness
from mmseg.datasets.transforms import RandomCrop
from mmseg.registry import TRANSFORMS


def edge_crop_offset(side: int, crop: int, rng: np.random.RandomState) -> int:
    """Offset of a crop whose centre is drawn uniformly over the image, shifted to lie inside it.

    Args:
        side (int): The image's side along this axis.
        crop (int): The crop's side along this axis.
        rng (np.random.RandomState): Random source (mmseg's transforms draw from numpy's global one).

    Returns:
        int: The offset, in ``[0, max(side - crop, 0)]``.
    """
    centre = int(rng.randint(0, max(side, 1)))
    return int(np.clip(centre - crop // 2, 0, max(side - crop, 0)))


@TRANSFORMS.register_module()
class EdgeRandomCrop(RandomCrop):
    """mmseg's ``RandomCrop`` (same arguments, ``cat_max_ratio`` retries included) with the crop's centre drawn
    uniformly over the image (see the module docstring)."""

    def _random_bbox(self, img: np.ndarray) -> tuple:
        """One crop box ``(y1, y2, x1, x2)`` of ``img``."""
        y1 = edge_crop_offset(img.shape[0], self.crop_size[0], np.random)
        x1 = edge_crop_offset(img.shape[1], self.crop_size[1], np.random)
        return y1, y1 + self.crop_size[0], x1, x1 + self.crop_size[1]

    @cache_randomness
    def crop_bbox(self, results: dict) -> tuple:
        """A crop box of the sample, retried up to 10 times while one class fills more than ``cat_max_ratio`` of it
        (as ``RandomCrop`` does).

        Args:
            results (dict): The sample, with ``img`` and ``gt_seg_map``.

        Returns:
            tuple: ``(y1, y2, x1, x2)``.
        """
        bbox = self._random_bbox(results['img'])
        if self.cat_max_ratio < 1.:
            for _ in range(10):
                labels, counts = np.unique(self.crop(results['gt_seg_map'], bbox), return_counts=True)
                counts = counts[labels != self.ignore_index]
                if len(counts) > 1 and np.max(counts) / np.sum(counts) < self.cat_max_ratio:
                    break
                bbox = self._random_bbox(results['img'])
        return bbox
