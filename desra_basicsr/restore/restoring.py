"""Restore one image with a trained restorer: whole, or only inside an artifact mask.

Example::

    import torch
    from desra_basicsr.image_io import read_image, read_mask
    from desra_basicsr.restore.checkpoint import load_restorer
    from desra_basicsr.restore.restoring import restore_image
    restorer = load_restorer('experiments/restore_demo/restorer.pth', torch.device('cpu'))
    out = restore_image(restorer, read_image('gan/0001.png'), mask=read_mask('masks/0001.png'), seed=0)
"""
from typing import Optional

import numpy as np
import torch

from desra_basicsr.restore.data import to_image, to_tensor
from desra_basicsr.restore.masking import blend_weights, composite, feather_weights, region_of
from desra_basicsr.restore.model import MASK_INDEX, Restorer, pad_to_multiple


def restore_array(restorer: Restorer, img: np.ndarray, label: int, guidance: float, steps: int, seed: int,
                  tile: Optional[int] = None, overlap: Optional[int] = None) -> np.ndarray:
    """Restore a whole image (padded to the sides the restorer needs, then cropped back).

    Each side is padded to a multiple of :attr:`~desra_basicsr.restore.model.Restorer.multiple`, and to at least two
    of them, so that the U-Net's lowest level has more than one value per channel for its group norms, even for an
    image of one pixel.

    Args:
        restorer (Restorer): The restorer (eval mode).
        img (np.ndarray): ``HxWx3`` uint8 BGR.
        label (int): Class index (:data:`~desra_basicsr.restore.model.MASK_INDEX`: blind).
        guidance (float): Classifier-free guidance scale (>= 1).
        steps (int): DDIM steps.
        seed (int): Seed of the initial noise (drawn on the CPU, so the same on every device).
        tile (int | None): Tile side in pixels (default: the training crop).
        overlap (int | None): Tile overlap in pixels (default: a quarter of the tile).

    Returns:
        np.ndarray: ``HxWx3`` uint8 BGR restored image.
    """
    device = next(restorer.unet.parameters()).device
    height, width = img.shape[:2]
    x = pad_to_multiple(to_tensor(img)[None].to(device), restorer.multiple, (2 * restorer.multiple, ) * 2)
    generator = torch.Generator().manual_seed(seed)
    out = restorer.sample(x, label, guidance, steps, generator, tile=tile, overlap=overlap)
    return to_image(out[0, :, :height, :width])


def restore_image(restorer: Restorer, img: np.ndarray, label: int = MASK_INDEX, guidance: float = 1.0,
                  steps: int = 30, seed: int = 0, tile: Optional[int] = None, overlap: Optional[int] = None,
                  mask: Optional[np.ndarray] = None, feather: int = 8, outside: float = 0.0,
                  passes: int = 1) -> np.ndarray:
    """Restore an image, or only the inside of ``mask`` (feathered inwards; every pixel outside stays as it was).

    With a mask, only the box around it, widened by half a tile of context, goes through the restorer; an empty
    mask returns the image unchanged without running the restorer. With a mask and ``outside`` above 0, the whole
    image is restored and mixed with the input by :func:`~desra_basicsr.restore.masking.blend_weights`: fully
    inside the mask, at strength ``outside`` elsewhere. With a mask and ``passes`` above 1, the result is restored
    again ``passes - 1`` times inside the mask only (same noise seed), so ``outside`` applies once.

    Args:
        restorer (Restorer): The restorer (eval mode).
        img (np.ndarray): ``HxWx3`` uint8 BGR.
        label (int): Class index (default: blind, ``[MASK]``).
        guidance (float): Classifier-free guidance scale (>= 1).
        steps (int): DDIM steps.
        seed (int): Seed of the initial noise.
        tile (int | None): Tile side in pixels (default: the training crop).
        overlap (int | None): Tile overlap in pixels (default: a quarter of the tile).
        mask (np.ndarray | None): ``HxW`` bool artifact mask of ``img`` (None: restore everything).
        feather (int): Width of the mask's feather in pixels (0: a hard edge).
        outside (float): With a mask, the strength of the restoration outside it, in [0, 1] (0: none).
        passes (int): With a mask, how many times the inside is restored, each pass on the last one's output.

    Returns:
        np.ndarray: ``HxWx3`` uint8 BGR.

    Raises:
        ValueError: If ``passes`` is below 1, or above 1 without a mask.
    """
    if passes < 1 or (passes > 1 and mask is None):
        raise ValueError(f'passes {passes}: give 1, or more with a mask')
    if passes > 1:
        out = restore_image(restorer, img, label, guidance, steps, seed, tile, overlap, mask, feather, outside)
        for _ in range(passes - 1):
            out = restore_image(restorer, out, label, guidance, steps, seed, tile, overlap, mask, feather)
        return out
    if mask is None or outside > 0:
        restored = restore_array(restorer, img, label, guidance, steps, seed, tile, overlap)
        return restored if mask is None else composite(img, restored, blend_weights(mask, feather, outside))
    box = region_of(mask, (tile or restorer.config.crop_size) // 2)
    if box is None:
        return img.copy()
    top, bottom, left, right = box
    out = img.copy()
    part = img[top:bottom, left:right]
    restored = restore_array(restorer, part, label, guidance, steps, seed, tile, overlap)
    out[top:bottom, left:right] = composite(part, restored, feather_weights(mask[top:bottom, left:right], feather))
    return out
