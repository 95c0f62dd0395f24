"""Compare detection methods and thresholds against ground truth in one pass (paper Tables 1, 4 and 5).

Every image triple (MSE-SR, GAN-SR, GT mask) is read once; each method computes its map once per image and is
thresholded at every requested threshold. Methods whose detector has a ``morphology`` setting (DeSRA-det and its
ablations) run at each threshold; the others (the LDL baselines, whose threshold is part of their name) run once.
The segmentation of an image is computed once and shared by every semantic method and threshold.
"""
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from desra_basicsr.detection.class_weights import ClassWeights
from desra_basicsr.detection.methods import build_detector
from desra_basicsr.detection.morphology import MorphologyConfig
from desra_basicsr.detection.segmenters import NoneSegmenter, Segmenter
from desra_basicsr.errors import DesraInputError
from desra_basicsr.evaluation.folders import align_to
from desra_basicsr.evaluation.mask_metrics import DEFAULT_P, DetectionScores
from desra_basicsr.image_io import read_image, read_mask, stem


class _LastImageSegmenter(Segmenter):
    """Wraps a segmenter and reuses its labels while the same image object is segmented again."""

    def __init__(self, inner: Segmenter) -> None:
        super().__init__(inner.class_names, inner.source)
        self.name = inner.name
        self.inner = inner
        self._image: Optional[np.ndarray] = None
        self._labels: Optional[np.ndarray] = None

    def segment(self, img: np.ndarray) -> Optional[np.ndarray]:
        if img is not self._image:
            self._labels = self.inner.segment(img)
            self._image = img
        return self._labels


@contextmanager
def checked_pair(y_mse: Optional[np.ndarray], y_gan: np.ndarray, mse_path: str, gan_path: str) -> Iterator[None]:
    """Detection on one MSE-SR / GAN-SR pair, with errors that name its files (``desra detect`` and the sweep).

    A pair of different sizes is refused before the work inside starts, and a ``ValueError`` raised inside (e.g. an
    image smaller than the method's window) becomes a :class:`DesraInputError` naming the GAN-SR file (a
    :class:`DesraInputError`, which names its file already, goes on as it is).

    Args:
        y_mse (np.ndarray | None): The MSE-SR output (None for a method that detects from the GAN-SR image alone).
        y_gan (np.ndarray): The GAN-SR output.
        mse_path (str): File of ``y_mse``, for the messages.
        gan_path (str): File of ``y_gan``, for the messages.

    Yields:
        None

    Raises:
        DesraInputError: If the sizes differ or the detection raises a ``ValueError``.
    """
    if y_mse is not None and y_mse.shape != y_gan.shape:
        raise DesraInputError(f'{gan_path}: size {y_gan.shape[1]}x{y_gan.shape[0]} differs from its MSE-SR partner '
                              f'{mse_path} ({y_mse.shape[1]}x{y_mse.shape[0]})')
    try:
        yield
    except DesraInputError:
        raise
    except ValueError as err:  # e.g. an image smaller than the method's window
        raise DesraInputError(f'{gan_path}: {err}') from err


@dataclass
class SweepEntry:
    """One row of the comparison: a method at a threshold, and its scores.

    Attributes:
        method (str): Method name (``desra detect --method``).
        threshold (float | None): Threshold, or None for methods with a fixed one.
        detector (object): The detector.
        scores (DetectionScores): Accumulated scores.
    """
    method: str
    threshold: Optional[float]
    detector: object
    scores: DetectionScores


def build_entries(methods: Sequence[str],
                  thresholds: Optional[Sequence[float]],
                  segmenter: Optional[Segmenter],
                  class_weights: Optional[ClassWeights] = None,
                  morphology: MorphologyConfig = MorphologyConfig(),
                  device: str = 'cpu',
                  p: float = DEFAULT_P) -> List[SweepEntry]:
    """Build one detector per (method, threshold).

    Args:
        methods (Sequence[str]): Method names.
        thresholds (Sequence[float] | None): Thresholds for methods with a morphology setting; None uses
            ``morphology.threshold`` only.
        segmenter (Segmenter | None): Segmenter for semantic methods (None: no segmentation).
        class_weights (ClassWeights | None): Class table (None: the release table when segmenting).
        morphology (MorphologyConfig): Base steps 4-5 settings; its threshold is replaced by each threshold.
        device (str): Device for the detectors.
        p (float): Overlap fraction of the region metrics.

    Returns:
        list[SweepEntry]: Entries in method, then threshold order.

    Raises:
        ValueError: For an unknown method name.
    """
    shared = None if segmenter is None or isinstance(segmenter, NoneSegmenter) else _LastImageSegmenter(segmenter)
    entries = []
    for method in methods:
        for t in (thresholds or [morphology.threshold]):
            detector = build_detector(
                method,
                morphology=replace(morphology, threshold=t),
                segmenter=shared,
                class_weights=class_weights,
                device=device)
            fixed = getattr(detector, 'morphology', None) is None
            entries.append(SweepEntry(method, None if fixed else t, detector, DetectionScores(p=p)))
            if fixed:
                break
    return entries


def run_entries(entries: List[SweepEntry],
                triples: Iterable[Tuple[str, str, str]],
                progress: Optional[Callable] = None,
                mask_channel: Optional[int] = None) -> List[SweepEntry]:
    """Score every entry on every ``(mse, gan, gt)`` triple, one image in memory at a time.

    Args:
        entries (list[SweepEntry]): From :func:`build_entries`.
        triples (Iterable[tuple[str, str, str]]): ``(mse_path, gan_path, gt_mask_path)``.
        progress (callable | None): Wrapper of the triples iterable (e.g. ``tqdm``).
        mask_channel (int | None): Channel of colour GT masks (see :func:`desra_basicsr.image_io.decode_mask`).

    Returns:
        list[SweepEntry]: ``entries``, with their scores filled.

    Raises:
        DesraInputError: If an image or mask is unreadable, the GT cannot be aligned with the outputs, or a pair
            cannot be detected (sizes that differ, an image smaller than the indicator window; see
            :func:`checked_pair`).
    """
    for mse_path, gan_path, gt_path in (progress(triples) if progress else triples):
        y_mse, y_gan = read_image(mse_path), read_image(gan_path)
        with checked_pair(y_mse, y_gan, mse_path, gan_path):
            gt = align_to(read_mask(gt_path, mask_channel), y_gan.shape[:2], gt_path)
            maps = {}  # one indicator map per method (shared by its thresholds)
            for entry in entries:
                det = entry.detector
                if entry.threshold is None:
                    result = det.detect(y_mse, y_gan)
                else:
                    if entry.method not in maps:
                        maps[entry.method] = det.indicator_map(y_mse, y_gan)
                    result = det.mask_from_map(maps[entry.method], y_mse, y_gan)
                entry.scores.add(stem(gan_path), result.mask, gt)
    return entries
