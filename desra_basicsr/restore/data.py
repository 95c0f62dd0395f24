"""Training crops of the restorer: (image with artifacts, clean image, class) from the artifact zoo's samples.

Each item is a random ``crop_size`` crop taken at the same place of a sample's image and its clean target, flipped
left-right half of the time, with the sample's class index or ``[MASK]`` (probability ``mask_probability``, DiffGAR's
50 %). The randomness of an item depends only on the seed, the epoch and the index, so a resumed training draws the
crops it would have drawn, and the data-loading processes need no shared state.
"""
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np
import torch

from desra_basicsr.errors import DesraInputError
from desra_basicsr.image_io import read_image
from desra_basicsr.restore.model import MASK_INDEX


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``HxWx3`` uint8 BGR -> ``3xHxW`` float RGB in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))).float() / 127.5 - 1


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """The inverse of :func:`to_tensor` (clipped and rounded): ``3xHxW`` -> ``HxWx3`` uint8 BGR."""
    img = ((tensor.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
    return np.ascontiguousarray(img.transpose(1, 2, 0)[:, :, ::-1])


def pad_to(img: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad an image at the bottom and right to at least ``size`` x ``size``."""
    bottom, right = max(size - img.shape[0], 0), max(size - img.shape[1], 0)
    if not bottom and not right:
        return img
    return cv2.copyMakeBorder(img, 0, bottom, 0, right, cv2.BORDER_REFLECT_101)


class PairCrops(torch.utils.data.Dataset):
    """Random aligned crops of (image with artifacts, clean target) pairs with their class labels.

    Args:
        pairs (Sequence[tuple[str, str, str]]): ``(image, target, class name)`` per sample.
        class_index (dict[str, int]): Class name -> embedding index.
        crop_size (int): Crop side in pixels.
        mask_probability (float): Probability of the ``[MASK]`` label.
        seed (int): Seed of the crops, flips and labels.
        length (int): Items per epoch (at least the samples; the samples repeat).
    """

    def __init__(self, pairs: Sequence[Tuple[str, str, str]], class_index: Dict[str, int], crop_size: int,
                 mask_probability: float, seed: int, length: int) -> None:
        self.pairs = list(pairs)
        self.class_index = class_index
        self.crop_size = crop_size
        self.mask_probability = mask_probability
        self.seed = seed
        self.length = max(length, len(self.pairs))
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, int]:
        image_path, target_path, cls = self.pairs[index % len(self.pairs)]
        image, target = read_image(image_path), read_image(target_path)
        if image.shape != target.shape:
            raise DesraInputError(f'{image_path}: {image.shape[1]}x{image.shape[0]} pixels, but its clean target '
                                  f'{target_path} has {target.shape[1]}x{target.shape[0]}; a pair must be aligned')
        image, target = pad_to(image, self.crop_size), pad_to(target, self.crop_size)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        top = int(rng.integers(0, image.shape[0] - self.crop_size + 1))
        left = int(rng.integers(0, image.shape[1] - self.crop_size + 1))
        crops = [img[top:top + self.crop_size, left:left + self.crop_size] for img in (image, target)]
        if rng.random() < 0.5:
            crops = [crop[:, ::-1] for crop in crops]
        label = MASK_INDEX if rng.random() < self.mask_probability else self.class_index[cls]
        return to_tensor(crops[0]), to_tensor(crops[1]), label
