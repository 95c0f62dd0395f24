"""``DeSRADetector``: the whole DeSRA-det pipeline (paper section 3.1, README "Detection") in one object.

Use it from Python on images read with :func:`desra_basicsr.image_io.read_image` (``HxWx3`` uint8 BGR)::

    detector = DeSRADetector(segmenter=build_segmenter('mmseg', checkpoint='segformer_mit-b5.pth'))
    result = detector.detect(read_image('mse/0001.png'), read_image('gan/0001.png'))
    result.mask  # HxW bool, True = artifact

or from BasicSR code on ``NxCxHxW`` RGB tensors in [0, 1] with :meth:`DeSRADetector.detect_tensors`.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch

from desra_basicsr.detection.class_weights import ClassWeights, apply_class_weights, load_class_weights
from desra_basicsr.detection.indicator import IndicatorConfig, indicator_numpy, indicator_torch
from desra_basicsr.detection.morphology import MorphologyConfig, threshold_map
from desra_basicsr.detection.segmenters import NoneSegmenter, Segmenter
from desra_basicsr.errors import DesraInputError

SEGMENT_INPUTS = ('gan', 'mse')


@dataclass
class DetectionResult:
    """Output of a detector for one image pair.

    Attributes:
        mask (np.ndarray): ``HxW`` bool, True = artifact.
        n_regions (int): Number of 8-connected regions in ``mask``.
        d_map (np.ndarray): ``HxW`` float32 indicator before the semantic adjustment (low = artifact).
        adjusted (np.ndarray): ``HxW`` float32 map that was thresholded (``d_map`` when no segmentation ran).
        labels (np.ndarray | None): ``HxW`` int class labels, or None when no segmentation ran.
        probability (np.ndarray | None): ``HxW`` float32 artifact probability, for detectors that predict one (the
            artifact localiser, :mod:`desra_basicsr.localizer.predictor`); None otherwise.
    """
    mask: np.ndarray
    n_regions: int
    d_map: np.ndarray
    adjusted: np.ndarray
    labels: Optional[np.ndarray] = None
    probability: Optional[np.ndarray] = None

    @property
    def artifact_fraction(self) -> float:
        """Fraction of the image's pixels marked as artifact."""
        return float(self.mask.mean()) if self.mask.size else 0.0


def _name_at(names: Tuple[str, ...], label: int) -> Optional[str]:
    return names[label] if label < len(names) else None


class DeSRADetector:
    """DeSRA-det: indicator, semantic adjustment, threshold and morphology.

    Args:
        indicator (IndicatorConfig): Steps 1-2 settings (window, sigma, C, numerator, ablation mode).
        morphology (MorphologyConfig): Steps 4-5 settings (threshold, kernels, min_area).
        segmenter (Segmenter | None): Step 3 segmenter; None or the ``none`` backend skips the adjustment.
        class_weights (ClassWeights | None): Weight table; None loads the DeSRA release table when a segmenter
            is used.
        segment_input (str): Which image is segmented: ``'gan'`` (the release) or ``'mse'`` (paper appendix).
        device (str): ``'cpu'`` computes the indicator with OpenCV; ``'cuda'`` (or ``'cuda:N'``) with torch on
            the GPU. Segmentation runs where the segmenter was built.

    Raises:
        DesraInputError: If the table's classes are not the segmenter's, in the same order.
        ValueError: For an unknown ``segment_input``.
    """

    def __init__(self,
                 indicator: IndicatorConfig = IndicatorConfig(),
                 morphology: MorphologyConfig = MorphologyConfig(),
                 segmenter: Optional[Segmenter] = None,
                 class_weights: Optional[ClassWeights] = None,
                 segment_input: str = 'gan',
                 device: str = 'cpu') -> None:
        if segment_input not in SEGMENT_INPUTS:
            raise ValueError(f'segment_input must be one of {SEGMENT_INPUTS}, got {segment_input!r}')
        self.indicator = indicator
        self.morphology = morphology
        self.segmenter = segmenter if segmenter is not None else NoneSegmenter()
        self.segment_input = segment_input
        self.device = torch.device(device)
        self.class_weights = None
        if self.uses_semantics:
            names = tuple(self.segmenter.class_names)
            self.class_weights = class_weights if class_weights is not None else load_class_weights(None, names)
            table = tuple(self.class_weights.names)
            if table != names:
                label = next((i for i, (a, b) in enumerate(zip(names, table)) if a != b), min(len(names), len(table)))
                raise DesraInputError(
                    f'{self.class_weights.source}: the class table does not match the classes of the segmentation '
                    f'model {self.segmenter.source} ({len(table)} vs {len(names)} classes; label {label} is '
                    f'{_name_at(table, label)!r} in the table and {_name_at(names, label)!r} in the model); load the '
                    'table with the model\'s class names (load_class_weights(path, segmenter.class_names))')

    @property
    def uses_semantics(self) -> bool:
        """Whether step 3 runs (a segmenter other than ``none``)."""
        return not isinstance(self.segmenter, NoneSegmenter)

    def indicator_map(self, y_mse: np.ndarray, y_gan: np.ndarray) -> np.ndarray:
        """Steps 1-2 on the detector's device.

        Args:
            y_mse (np.ndarray): ``HxWx3`` uint8 MSE-SR output.
            y_gan (np.ndarray): ``HxWx3`` uint8 GAN-SR output.

        Returns:
            np.ndarray: ``HxW`` float32 map.
        """
        if self.device.type == 'cpu':
            return indicator_numpy(y_mse, y_gan, self.indicator)
        to_tensor = lambda img: torch.from_numpy(np.ascontiguousarray(img)).to(self.device).permute(2, 0, 1)  # noqa
        return indicator_torch(to_tensor(y_mse), to_tensor(y_gan), self.indicator).cpu().numpy()

    def mask_from_map(self, d_map: np.ndarray, y_mse: np.ndarray, y_gan: np.ndarray) -> DetectionResult:
        """Steps 3-5 given the indicator map.

        Args:
            d_map (np.ndarray): ``HxW`` indicator map.
            y_mse (np.ndarray): ``HxWx3`` uint8 BGR MSE-SR output.
            y_gan (np.ndarray): ``HxWx3`` uint8 BGR GAN-SR output.

        Returns:
            DetectionResult: Mask and intermediate maps.
        """
        labels = None
        adjusted = d_map
        if self.uses_semantics:
            labels = self.segmenter.segment(y_gan if self.segment_input == 'gan' else y_mse)
            adjusted = apply_class_weights(d_map, labels, self.class_weights)
        mask, n_regions = threshold_map(adjusted, self.morphology)
        return DetectionResult(mask=mask, n_regions=n_regions, d_map=d_map, adjusted=adjusted, labels=labels)

    def detect(self, y_mse: np.ndarray, y_gan: np.ndarray) -> DetectionResult:
        """Detect the artifacts of a GAN-SR output against its MSE-SR twin.

        Args:
            y_mse (np.ndarray): ``HxWx3`` uint8 BGR MSE-SR output.
            y_gan (np.ndarray): ``HxWx3`` uint8 BGR GAN-SR output of the same LR image, same size.

        Returns:
            DetectionResult: Mask and intermediate maps, all at the image size.

        Raises:
            ValueError: If the sizes differ or the image is smaller than the indicator window.
        """
        return self.mask_from_map(self.indicator_map(y_mse, y_gan), y_mse, y_gan)

    def detect_tensors(self, y_mse: torch.Tensor, y_gan: torch.Tensor) -> List[DetectionResult]:
        """Batched detection on BasicSR tensors: the indicator runs in one batch on CUDA tensors' device (OpenCV for
        CPU tensors); segmentation and morphology per image.

        Args:
            y_mse (torch.Tensor): ``NxCxHxW`` RGB MSE-SR outputs in [0, 1].
            y_gan (torch.Tensor): ``NxCxHxW`` RGB GAN-SR outputs in [0, 1], same shape.

        Returns:
            list[DetectionResult]: One result per image (numpy arrays on the CPU).
        """
        if y_mse.device.type == 'cpu':  # OpenCV is several times faster than torch's float64 filtering on CPU
            to_hwc = lambda t: t.detach().permute(1, 2, 0).double().numpy()  # noqa: E731
            d_maps = [
                indicator_numpy(to_hwc(m), to_hwc(g), self.indicator, data_range=1.0) for m, g in zip(y_mse, y_gan)
            ]
        else:
            d_maps = indicator_torch(y_mse.detach(), y_gan.detach(), self.indicator, data_range=1.0).cpu().numpy()

        def to_bgr_uint8(t: torch.Tensor) -> np.ndarray:
            return (t.detach().clamp(0, 1) * 255).round().byte().flip(0).permute(1, 2, 0).cpu().numpy()

        return [self.mask_from_map(d, to_bgr_uint8(m), to_bgr_uint8(g)) for d, m, g in zip(d_maps, y_mse, y_gan)]
