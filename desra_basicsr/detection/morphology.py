"""DeSRA-det steps 4-5: threshold the (adjusted) indicator map and clean the mask (paper section 3.1).

Defaults follow the paper and the authors' released code: artifact where ``D < 0.7``; erode once with a 5x5
all-ones kernel; dilate three times with the same kernel; fill holes (3x3 structuring element); keep only
8-connected regions with area > 4000 pixels. Erosion and dilation use OpenCV's default border (pixels outside
the image never erode the mask nor grow it).
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np
from scipy import ndimage

from desra_basicsr.constants import DETECT_THRESHOLD, MIN_AREA


@dataclass(frozen=True)
class MorphologyConfig:
    """Settings of steps 4-5.

    Attributes:
        threshold (float): Artifact where the map is strictly below this value (paper: 0.7).
        kernel_size (int): Side of the square all-ones erosion/dilation kernel (5).
        erode_iterations (int): Erosions (1).
        dilate_iterations (int): Dilations (3).
        fill_holes (bool): Fill holes with a 3x3 structuring element.
        min_area (int): Regions with area <= ``min_area`` pixels are dropped (4000, at the x4 SR output scale).
        min_area_reference (int | None): If set, ``min_area`` is meant for images of this many pixels and is
            scaled by ``H * W / min_area_reference`` for other sizes; None keeps ``min_area`` as is.
    """
    threshold: float = DETECT_THRESHOLD
    kernel_size: int = 5
    erode_iterations: int = 1
    dilate_iterations: int = 3
    fill_holes: bool = True
    min_area: int = MIN_AREA
    min_area_reference: Optional[int] = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold):
            raise ValueError(f'threshold must be a finite number, got {self.threshold}')
        if self.kernel_size < 1:
            raise ValueError(f'morphology kernel_size must be >= 1, got {self.kernel_size}')
        if self.erode_iterations < 0 or self.dilate_iterations < 0:
            raise ValueError('morphology iterations must be >= 0')
        if self.min_area < 0:
            raise ValueError(f'min_area must be >= 0, got {self.min_area}')
        if self.min_area_reference is not None and self.min_area_reference <= 0:
            raise ValueError(f'min_area_reference must be > 0, got {self.min_area_reference}')

    def effective_min_area(self, shape: Tuple[int, int]) -> float:
        """The area limit for an image of ``shape`` (``min_area``, scaled when ``min_area_reference`` is set).

        Args:
            shape (tuple[int, int]): ``(H, W)``.

        Returns:
            float: Regions with area <= this value are dropped.
        """
        if self.min_area_reference is None:
            return float(self.min_area)
        return self.min_area * shape[0] * shape[1] / self.min_area_reference


def remove_small_regions(mask: np.ndarray, min_area: float) -> Tuple[np.ndarray, int]:
    """Keep the 8-connected regions of ``mask`` with area > ``min_area``.

    Args:
        mask (np.ndarray): ``HxW`` bool mask.
        min_area (float): Area limit in pixels (regions with exactly this area are dropped).

    Returns:
        tuple: ``(mask, n_regions)``: the cleaned ``HxW`` bool mask and the number of regions kept.
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] > min_area
    keep[0] = False  # background
    return keep[labels], int(keep.sum())


def clean_mask(mask: np.ndarray, cfg: MorphologyConfig = MorphologyConfig()) -> Tuple[np.ndarray, int]:
    """Step 5: erode, dilate, fill holes, drop small regions.

    Args:
        mask (np.ndarray): ``HxW`` bool raw artifact mask.
        cfg (MorphologyConfig): Settings.

    Returns:
        tuple: ``(mask, n_regions)``: ``HxW`` bool mask and its number of 8-connected regions.
    """
    out = mask.astype(np.uint8)
    kernel = np.ones((cfg.kernel_size, cfg.kernel_size), np.uint8)
    if cfg.erode_iterations:
        out = cv2.erode(out, kernel, iterations=cfg.erode_iterations)
    if cfg.dilate_iterations:
        out = cv2.dilate(out, kernel, iterations=cfg.dilate_iterations)
    out = out.astype(bool)
    if cfg.fill_holes:
        out = ndimage.binary_fill_holes(out, structure=np.ones((3, 3), bool))
    return remove_small_regions(out, cfg.effective_min_area(out.shape))


def threshold_map(d_map: np.ndarray, cfg: MorphologyConfig = MorphologyConfig()) -> Tuple[np.ndarray, int]:
    """Steps 4-5: artifact mask of an (adjusted) indicator map.

    Args:
        d_map (np.ndarray): ``HxW`` map, low = artifact.
        cfg (MorphologyConfig): Settings.

    Returns:
        tuple: ``(mask, n_regions)``: ``HxW`` bool mask (True = artifact) and its number of regions.
    """
    return clean_mask(np.asarray(d_map) < cfg.threshold, cfg)
