"""Restoring only what is broken: the region to restore around a mask, and the feathered composite.

The feather lies inside the mask: a pixel's weight is its distance to the nearest pixel outside the mask divided by
``feather`` (capped at 1), so it rises from the mask's border inwards, and every pixel outside the mask keeps the
input's value exactly.
"""
from typing import Optional, Tuple

import cv2
import numpy as np


def feather_weights(mask: np.ndarray, feather: int) -> np.ndarray:
    """Per-pixel weights of the restored image: 0 outside the mask, rising to 1 over ``feather`` pixels inside.

    Args:
        mask (np.ndarray): ``HxW`` bool artifact mask.
        feather (int): Ramp width in pixels (0: a hard mask).

    Returns:
        np.ndarray: ``HxW`` float32 weights in [0, 1], exactly 0 outside the mask.
    """
    inside = mask.astype(np.uint8)
    if feather <= 0 or not inside.any():
        return inside.astype(np.float32)
    padded = cv2.copyMakeBorder(inside, 1, 1, 1, 1, cv2.BORDER_REPLICATE)  # the image's border is no mask border
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    return np.where(mask, np.minimum(distance / feather, 1.0), 0.0).astype(np.float32)


def blend_weights(mask: np.ndarray, feather: int, outside: float) -> np.ndarray:
    """Per-pixel weights of a whole-image restoration that keeps part of the input outside the mask.

    Inside the mask the weights are :func:`feather_weights`; outside they are ``outside`` instead of 0, so the
    restoration is applied at that strength there (0: :func:`feather_weights`, 1: the restoration everywhere).

    Args:
        mask (np.ndarray): ``HxW`` bool artifact mask.
        feather (int): Ramp width in pixels (0: a hard mask).
        outside (float): Weight of the restoration outside the mask, in [0, 1].

    Returns:
        np.ndarray: ``HxW`` float32 weights in [``outside``, 1].
    """
    return (outside + (1.0 - outside) * feather_weights(mask, feather)).astype(np.float32)


def region_of(mask: np.ndarray, margin: int) -> Optional[Tuple[int, int, int, int]]:
    """The box around the mask, widened by ``margin`` pixels of context and clipped to the image.

    Args:
        mask (np.ndarray): ``HxW`` bool mask.
        margin (int): Context pixels on each side.

    Returns:
        tuple | None: ``(top, bottom, left, right)`` (exclusive ends), or None for an empty mask.
    """
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    height, width = mask.shape
    return (max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, height), max(int(cols[0]) - margin, 0),
            min(int(cols[-1]) + 1 + margin, width))


def composite(image: np.ndarray, restored: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``image`` where the weight is 0, the weighted mix of ``restored`` and ``image`` elsewhere.

    Args:
        image (np.ndarray): ``HxWx3`` uint8 input.
        restored (np.ndarray): ``HxWx3`` uint8 restoration of it.
        weights (np.ndarray): ``HxW`` weights (:func:`feather_weights`).

    Returns:
        np.ndarray: ``HxWx3`` uint8; pixels of weight 0 are the input's, bit for bit.
    """
    w = weights[:, :, None]
    mixed = np.clip(np.rint(image * (1.0 - w) + restored * w), 0, 255).astype(np.uint8)
    return np.where(w > 0, mixed, image)
