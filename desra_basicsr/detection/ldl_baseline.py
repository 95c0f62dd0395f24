"""LDL-style artifact map, the baseline detector of the DeSRA paper (Table 1).

LDL (Liang et al., "Details or Artifacts", CVPR 2022) weights a residual ``r`` between an SR output and a
reference by its local variance, scaled by the patch-level variance (``get_refined_artifact_map`` in LDL's
``basicsr/losses/loss_util.py``)::

    r   = sum_c |gan_c - ref_c|                       (images in [0, 1])
    map = var(r over the whole image) ** (1/5) * local_var_7x7(r)

Both variances are unbiased (``torch.var`` default); the local window is padded with ``reflect`` padding
(OpenCV's ``BORDER_REFLECT_101``), so the map has the image size. DeSRA's baseline uses the MSE-SR output as the
reference (no ground truth exists for real images) and marks pixels whose map value exceeds a threshold
(0.01, 0.005 or 0.001 in the paper); no morphology is applied, as in the paper's baseline.

:class:`LDLDetector` wraps it in the detector interface of :mod:`desra_basicsr.detection.methods`
(``ldl-0.01``, ``ldl-0.005``, ``ldl-0.001`` in ``desra detect --method``).
"""
from typing import Tuple

import cv2
import numpy as np

from desra_basicsr.constants import LDL_KSIZE
from desra_basicsr.detection.detector import DetectionResult
from desra_basicsr.detection.morphology import remove_small_regions

LDL_THRESHOLDS: Tuple[float, ...] = (0.01, 0.005, 0.001)


def ldl_artifact_map(y_mse: np.ndarray, y_gan: np.ndarray, ksize: int = LDL_KSIZE) -> np.ndarray:
    """LDL artifact map of a GAN-SR output with the MSE-SR output as reference.

    Args:
        y_mse (np.ndarray): ``HxWxC`` uint8 MSE-SR output (values 0..255).
        y_gan (np.ndarray): ``HxWxC`` uint8 GAN-SR output, same shape.
        ksize (int): Odd local window size (LDL uses 7).

    Returns:
        np.ndarray: ``HxW`` float32 map (higher = more likely artifact).

    Raises:
        ValueError: If the shapes differ, ``ksize`` is not odd and positive, or the image is smaller than the
            window's half size plus one (reflect padding needs it).
    """
    if y_mse.shape != y_gan.shape:
        raise ValueError(f'MSE-SR and GAN-SR shapes differ: {y_mse.shape} vs {y_gan.shape}')
    if ksize < 1 or ksize % 2 == 0:
        raise ValueError(f'ksize must be odd and positive, got {ksize}')
    if min(y_mse.shape[:2]) <= ksize // 2:
        raise ValueError(f'image {y_mse.shape[:2]} is too small for a {ksize}x{ksize} window')
    diff = np.abs(y_gan.astype(np.float64) - y_mse.astype(np.float64)) / 255.0
    residual = diff.sum(axis=2) if diff.ndim == 3 else diff
    n = ksize * ksize
    mean = cv2.boxFilter(residual, -1, (ksize, ksize), normalize=True, borderType=cv2.BORDER_REFLECT_101)
    mean_sq = cv2.boxFilter(residual * residual, -1, (ksize, ksize), normalize=True, borderType=cv2.BORDER_REFLECT_101)
    local_var = np.maximum(mean_sq - mean * mean, 0.0) * (n / (n - 1))
    patch_weight = float(np.var(residual, ddof=1))**(1 / 5) if residual.size > 1 else 0.0
    return (patch_weight * local_var).astype(np.float32)


class LDLDetector:
    """The LDL baseline as a detector (``detect(y_mse, y_gan) -> DetectionResult``).

    The result's ``d_map`` and ``adjusted`` hold the LDL map, where, unlike DeSRA's ``D``, **high** means artifact.

    Args:
        threshold (float): Map threshold.
        ksize (int): Local window size.
    """

    def __init__(self, threshold: float = LDL_THRESHOLDS[0], ksize: int = LDL_KSIZE) -> None:
        if threshold < 0:
            raise ValueError(f'LDL threshold must be >= 0, got {threshold}')
        self.threshold = threshold
        self.ksize = ksize

    def detect(self, y_mse: np.ndarray, y_gan: np.ndarray) -> DetectionResult:
        """Detect with the LDL map.

        Args:
            y_mse (np.ndarray): ``HxWx3`` uint8 BGR MSE-SR output.
            y_gan (np.ndarray): ``HxWx3`` uint8 BGR GAN-SR output, same size.

        Returns:
            DetectionResult: Mask, region count and the LDL map.
        """
        ldl_map = ldl_artifact_map(y_mse, y_gan, self.ksize)
        mask, n_regions = remove_small_regions(ldl_map > self.threshold, 0)  # area > 0: counts every region
        return DetectionResult(mask=mask, n_regions=n_regions, d_map=ldl_map, adjusted=ldl_map)


def build_ldl_detector(threshold: float, **kwargs) -> LDLDetector:
    """Builder for :data:`desra_basicsr.detection.methods.METHODS` entries.

    Args:
        threshold (float): Map threshold.
        **kwargs: The other ``build_detector`` arguments (morphology, segmenter, class table, device); ignored,
            the baseline uses none of them (it runs in numpy).

    Returns:
        LDLDetector: The detector.
    """
    return LDLDetector(threshold)
