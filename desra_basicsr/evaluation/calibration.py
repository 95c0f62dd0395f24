"""Per-class calibration of the semantic weights of DeSRA-det (paper section 3.1 and eq. 8).

``A_k`` is a percentile (85th in the paper) of the indicator ``D`` over every pixel of class ``k`` across a data
set of MSE-SR / GAN-SR pairs; the class weight is ``w_k = 1 / A_k``. Memory stays flat in the number of images:
each image adds its pixels to a fixed per-class histogram of ``D`` (``bins`` equal bins over [0, 1]), and the
percentile is read from the cumulative histogram with linear interpolation inside the bin, so it is exact to
within one bin width (``1 / bins``; 1e-4 by default).

The released table of the DeSRA authors quantises ``D`` into 20 bins: ``name--idx`` with ``A = (20 - idx) / 20``.
:func:`released_index` maps a percentile ``P`` to that form: the bin of ``[0, 1]`` split into 20 equal bins that
holds ``P``, counted from the top (``idx = 19 - min(floor(20 P), 19)``), so ``A`` reads back as that bin's upper
edge.
"""
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import yaml

from desra_basicsr.detection.class_weights import RELEASE_BINS
from desra_basicsr.detection.indicator import IndicatorConfig, indicator_numpy
from desra_basicsr.image_io import read_image
from desra_basicsr.utils import atomic_write_path

DEFAULT_BINS = 10000


class ClassHistogram:
    """Streaming per-class histogram of ``D`` values in [0, 1].

    Args:
        num_classes (int): Number of classes (1 when no segmenter is used).
        bins (int): Histogram bins over [0, 1].
    """

    def __init__(self, num_classes: int, bins: int = DEFAULT_BINS) -> None:
        if num_classes < 1 or bins < 1:
            raise ValueError(f'num_classes and bins must be positive, got {num_classes}, {bins}')
        self.num_classes = num_classes
        self.bins = bins
        self.counts = np.zeros((num_classes, bins), np.int64)

    def add(self, d: np.ndarray, labels: Optional[np.ndarray] = None) -> None:
        """Add one image's ``D`` map; values outside [0, 1] are clipped into the end bins.

        Args:
            d (np.ndarray): ``HxW`` indicator map.
            labels (np.ndarray | None): ``HxW`` integer class map (0-based, < ``num_classes``), or None to put
                every pixel in class 0.

        Raises:
            ValueError: If the shapes differ, a label is out of range or ``d`` holds NaN or infinite values.
        """
        d = np.asarray(d)
        if not np.isfinite(d).all():
            raise ValueError('the D map holds NaN or infinite values (non-finite pixels in an input image?)')
        index = np.clip((d.ravel() * self.bins).astype(np.int64), 0, self.bins - 1)
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != d.shape:
                raise ValueError(f'label map {labels.shape} and D map {d.shape} differ in shape')
            flat = labels.ravel().astype(np.int64)
            if flat.size and (flat.min() < 0 or flat.max() >= self.num_classes):
                raise ValueError(f'labels must lie in [0, {self.num_classes - 1}], got [{flat.min()}, {flat.max()}]')
            index += flat * self.bins
        self.counts += np.bincount(index, minlength=self.counts.size).reshape(self.counts.shape)

    def pixels(self) -> np.ndarray:
        """Pixels seen per class.

        Returns:
            np.ndarray: ``(num_classes,)`` int64 counts.
        """
        return self.counts.sum(axis=1)

    def percentile(self, q: float) -> np.ndarray:
        """Per-class ``q``-th percentile of ``D``, interpolated linearly inside the bin (NaN for unseen classes).

        Args:
            q (float): Percentile in [0, 100].

        Returns:
            np.ndarray: ``(num_classes,)`` float64 values in [0, 1].
        """
        if not 0 <= q <= 100:
            raise ValueError(f'percentile must be in [0, 100], got {q}')
        out = np.full(self.num_classes, np.nan)
        for k, row in enumerate(self.counts):
            total = int(row.sum())
            if total == 0:
                continue
            rank = max(q / 100.0 * total, 1e-9)  # q = 0: the lower edge of the first non-empty bin
            cum = np.cumsum(row)
            b = int(np.searchsorted(cum, rank, side='left'))
            b = min(b, self.bins - 1)
            before = cum[b - 1] if b > 0 else 0
            inside = (rank - before) / row[b] if row[b] else 0.0
            out[k] = (b + min(max(inside, 0.0), 1.0)) / self.bins
        return out


def released_index(percentile: float) -> int:
    """Index of the released 20-bin table for a percentile value (see the module docstring).

    Args:
        percentile (float): ``A_k`` in [0, 1].

    Returns:
        int: ``idx`` in [0, 19]; ``A = (20 - idx) / 20``.
    """
    return RELEASE_BINS - 1 - min(int(np.floor(percentile * RELEASE_BINS)), RELEASE_BINS - 1)


def accumulate(pairs: Iterable[Tuple[str, str]],
               num_classes: int = 1,
               segment: Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]] = None,
               cfg: IndicatorConfig = IndicatorConfig(),
               bins: int = DEFAULT_BINS) -> ClassHistogram:
    """Stream MSE-SR / GAN-SR pairs into a per-class histogram of ``D``, one pair in memory at a time.

    Args:
        pairs (Iterable[tuple[str, str]]): ``(mse_path, gan_path)`` per image (wrap in ``tqdm`` for progress).
        num_classes (int): Number of classes of ``segment`` (1 without a segmenter).
        segment (callable | None): ``segment(y_mse, y_gan) -> HxW int labels``; None puts every pixel in class 0.
        cfg (IndicatorConfig): Indicator settings (as the detector will use them).
        bins (int): Histogram bins.

    Returns:
        ClassHistogram: The accumulated histogram.

    Raises:
        DesraInputError: If an image is unreadable.
        ValueError: If a pair differs in size or is smaller than the indicator window.
    """
    hist = ClassHistogram(num_classes, bins)
    for mse_path, gan_path in pairs:
        y_mse, y_gan = read_image(mse_path), read_image(gan_path)
        if y_mse.shape != y_gan.shape:
            raise ValueError(f'{gan_path}: size {y_gan.shape[1]}x{y_gan.shape[0]} differs from {mse_path} '
                             f'({y_mse.shape[1]}x{y_mse.shape[0]})')
        d_map = indicator_numpy(y_mse, y_gan, cfg)
        hist.add(d_map, None if segment is None else segment(y_mse, y_gan))
    return hist


def weights_from_percentiles(percentiles: np.ndarray,
                             floor: float = 1.0 / RELEASE_BINS) -> Tuple[np.ndarray, List[int]]:
    """Class weights ``1 / A_k``; classes never seen (NaN) get weight 1 (no adjustment).

    Args:
        percentiles (np.ndarray): ``A_k`` per class (NaN for unseen classes).
        floor (float): Smallest ``A_k`` used (caps the weight at ``1 / floor``; the released table's smallest
            possible ``A`` is 1/20).

    Returns:
        tuple: ``(weights, unseen)``: float64 weights and the indices of unseen classes.
    """
    unseen = [int(k) for k in np.flatnonzero(np.isnan(percentiles))]
    a = np.where(np.isnan(percentiles), 1.0, np.maximum(percentiles, floor))
    return 1.0 / a, unseen


def write_weights_yaml(path: str, names: Sequence[str], weights: np.ndarray, header: Sequence[str]) -> None:
    """Write a class table as YAML ``class name: weight`` (the detector's table format), atomically.

    Args:
        path (str): Destination ``.yml`` / ``.yaml`` file.
        names (Sequence[str]): Class names in label order.
        weights (np.ndarray): Weight per class.
        header (Sequence[str]): Comment lines written first (without ``#``).
    """
    table = {name: round(float(w), 6) for name, w in zip(names, weights)}
    body = yaml.safe_dump(table, sort_keys=False, allow_unicode=True, width=120)
    with atomic_write_path(path) as tmp, open(tmp, 'w', encoding='utf-8') as f:
        f.write(''.join(f'# {line}\n' for line in header) + body)


def write_released_table(path: str, names: Sequence[str], percentiles: np.ndarray, header: Sequence[str]) -> None:
    """Write a class table in the authors' released ``name--idx`` format (20 bins), atomically.

    Classes never seen get ``idx 0`` (weight 1).

    Args:
        path (str): Destination text file.
        names (Sequence[str]): Class names in label order.
        percentiles (np.ndarray): ``A_k`` per class (NaN for unseen classes).
        header (Sequence[str]): Comment lines written first (without ``#``).
    """
    lines = [f'{name}--{0 if np.isnan(a) else released_index(float(a))}' for name, a in zip(names, percentiles)]
    with atomic_write_path(path) as tmp, open(tmp, 'w', encoding='utf-8') as f:
        f.write(''.join(f'# {line}\n' for line in header) + '\n'.join(lines) + '\n')
