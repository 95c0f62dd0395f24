"""Multi-model fusion: assemble one output from several SR candidates so that each region comes from a candidate
without artifacts there (Zhao, "The Cross-Domain Application Research of a Super-Resolution Semantic Artifact
Rectification Method": several generators run on the same input, their artifacts are localised, and the outputs
are fused region by region; see docs/localizer-fusion.md).

Pure numpy / OpenCV functions on arrays (``HxWx3`` uint8 images, ``HxW`` float score maps); nothing here imports
torch, BasicSR or mmsegmentation.

The steps of :func:`fuse`:

1. **Scores.** One ``HxW`` artifact score per candidate, high = artifact, in [0, 1]. Either DeSRA's indicator
   against an MSE-SR reference (:func:`desra_scores`: ``1 - D``, with ``D`` from
   :func:`desra_basicsr.detection.indicator.indicator_numpy`), or any other map such as an artifact localiser's
   probability.
2. **Regions.** Each score map is smoothed with a Gaussian (``region_sigma``), so that the choice is made per
   neighbourhood rather than per pixel, then spread by a grey dilation (maximum over a disc of radius ``margin``),
   so that a candidate counts as an artifact up to ``margin`` pixels around its artifacts: the feathered
   transition of step 4 then happens outside them. At each pixel the candidate with the lowest spread score wins;
   among candidates within ``tie_margin`` of the lowest, the one listed first wins (so the choice changes only
   where it matters, not on noise between equally clean candidates).
3. **Fallback.** When a fallback image is given (the MSE-SR output), it is used where even the best candidate's
   spread score reaches ``artifact_threshold`` (every candidate has an artifact there).
4. **Feathering.** Each source's one-hot choice map is blurred with a Gaussian (``feather_sigma``) and the blurred
   maps, normalised to sum to 1, weight the sources. Across a region border the output moves from one source to
   the next over about ``4 * feather_sigma`` pixels instead of jumping, and wherever all sources agree the output
   equals them exactly (the weights are a partition of unity). With ``margin >= 3 * feather_sigma`` the source
   being replaced keeps a weight below 0.2 % on its artifacts.

The result carries the fused image, the per-pixel index of the chosen source (``0 .. N-1`` the candidates, ``N``
the fallback) and each source's share of the image (fraction of pixels whose index is that source).
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import cv2
import numpy as np

from desra_basicsr.detection.indicator import IndicatorConfig, indicator_numpy

#: Spread DeSRA score ``1 - D`` at or above which a candidate counts as an artifact (DeSRA-det: ``D < 0.7``).
DESRA_ARTIFACT_SCORE = 0.3
#: Spread localiser probability at or above which a candidate counts as an artifact.
PROBABILITY_ARTIFACT_SCORE = 0.5


@dataclass(frozen=True)
class FusionConfig:
    """Settings of :func:`fuse`.

    Attributes:
        region_sigma (float): Gaussian sigma (pixels) smoothing each score map before the choice; 0 chooses per
            pixel.
        margin (int): Radius (pixels) of the grey dilation spreading each smoothed score map; 0 spreads nothing.
        feather_sigma (float): Gaussian sigma (pixels) of the blending weights; 0 gives hard borders.
        artifact_threshold (float): Spread score at or above which a candidate counts as an artifact; where all
            candidates do, the fallback image (if any) is used.
        tie_margin (float): Candidates whose spread score is within this of the lowest count as tied; the first
            listed of them wins.
    """
    region_sigma: float = 4.0
    margin: int = 9
    feather_sigma: float = 3.0
    artifact_threshold: float = DESRA_ARTIFACT_SCORE
    tie_margin: float = 0.02

    def __post_init__(self) -> None:
        if self.region_sigma < 0 or self.feather_sigma < 0:
            raise ValueError(f'fusion sigmas must be >= 0, got region_sigma={self.region_sigma}, '
                             f'feather_sigma={self.feather_sigma}')
        if self.margin < 0:
            raise ValueError(f'fusion margin must be >= 0, got {self.margin}')
        if self.tie_margin < 0:
            raise ValueError(f'fusion tie_margin must be >= 0, got {self.tie_margin}')


@dataclass
class FusionResult:
    """Output of :func:`fuse`.

    Attributes:
        image (np.ndarray): ``HxWx3`` uint8 fused image.
        index_map (np.ndarray): ``HxW`` uint8 index of the chosen source per pixel: ``0 .. N-1`` the candidates in
            the given order, ``N`` the fallback image.
        shares (np.ndarray): Float64 fraction of pixels per source, ``N`` entries (``N + 1`` with a fallback).
    """
    image: np.ndarray
    index_map: np.ndarray
    shares: np.ndarray


def check_candidates(candidates: Sequence[np.ndarray],
                     fallback: Optional[np.ndarray] = None,
                     names: Optional[Sequence[str]] = None) -> None:
    """Validate fusion inputs: at least two candidates, all ``HxWx3`` uint8 of one size (the fallback too).

    Args:
        candidates (Sequence[np.ndarray]): Candidate images.
        fallback (np.ndarray | None): Fallback image (MSE-SR output).
        names (Sequence[str] | None): Name of each candidate (e.g. its file), then of the fallback, for messages.

    Raises:
        ValueError: Naming the offending input.
    """
    if len(candidates) < 2:
        raise ValueError(f'fusion needs at least 2 candidates, got {len(candidates)}')
    images = list(candidates) + ([] if fallback is None else [fallback])
    labels = list(names) if names is not None else [f'candidate {i}' for i in range(len(candidates))] + ['fallback']
    reference = np.asarray(images[0]).shape
    for label, img in zip(labels, images):
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f'{label}: expected an HxWx3 uint8 image, got {img.dtype} array of shape {img.shape}')
        if img.shape != reference:
            raise ValueError(f'{label}: size {img.shape[1]}x{img.shape[0]} differs from {labels[0]} '
                             f'({reference[1]}x{reference[0]})')


def desra_scores(candidates: Sequence[np.ndarray],
                 reference: np.ndarray,
                 indicator: IndicatorConfig = IndicatorConfig()) -> List[np.ndarray]:
    """DeSRA artifact scores ``1 - D`` of each candidate against an MSE-SR reference (high = artifact).

    Args:
        candidates (Sequence[np.ndarray]): ``HxWx3`` uint8 candidate images.
        reference (np.ndarray): ``HxWx3`` uint8 MSE-SR output of the same input.
        indicator (IndicatorConfig): Indicator settings (DeSRA-det steps 1-2).

    Returns:
        list[np.ndarray]: One ``HxW`` float32 map per candidate, in [0, 1].
    """
    return [np.clip(1 - indicator_numpy(reference, img, indicator), 0, 1) for img in candidates]


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (OpenCV, mirrored border); sigma 0 returns ``x`` as float32."""
    x = x.astype(np.float32, copy=False)
    if sigma <= 0:
        return x
    return cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def choose_sources(scores: Sequence[np.ndarray], cfg: FusionConfig = FusionConfig(),
                   has_fallback: bool = False) -> np.ndarray:
    """Per-pixel index of the source to use (steps 2-3 of the module docstring).

    Args:
        scores (Sequence[np.ndarray]): ``HxW`` artifact score per candidate (high = artifact).
        cfg (FusionConfig): Settings.
        has_fallback (bool): Whether index ``len(scores)`` (the fallback) may be chosen.

    Returns:
        np.ndarray: ``HxW`` uint8 index map.

    Raises:
        ValueError: If the score maps are not ``HxW`` maps of one size.
    """
    if len(scores) > 254:
        raise ValueError(f'fusion takes at most 254 candidates, got {len(scores)}')
    shape = np.asarray(scores[0]).shape
    for i, score in enumerate(scores):
        if np.asarray(score).ndim != 2 or np.asarray(score).shape != shape:
            raise ValueError(f'score map {i}: expected an HxW map of shape {shape}, got {np.asarray(score).shape}')
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * cfg.margin + 1, 2 * cfg.margin + 1))
    spread = np.stack([cv2.dilate(_blur(np.asarray(s), cfg.region_sigma), disc) for s in scores])
    best = spread.min(axis=0)
    # First candidate within the tie margin of the best (argmax of a bool stack finds the first True).
    index = (spread <= best + cfg.tie_margin).argmax(axis=0).astype(np.uint8)
    if has_fallback:
        index[best >= cfg.artifact_threshold] = len(scores)
    return index


def feather_blend(sources: Sequence[np.ndarray], index_map: np.ndarray, sigma: float) -> np.ndarray:
    """Blend the sources with Gaussian-feathered weights of the index map (step 4 of the module docstring).

    Args:
        sources (Sequence[np.ndarray]): ``HxWx3`` uint8 images, one per index value.
        index_map (np.ndarray): ``HxW`` index of the source per pixel.
        sigma (float): Feathering sigma in pixels (0: hard borders).

    Returns:
        np.ndarray: ``HxWx3`` uint8 image.
    """
    total = np.zeros(index_map.shape, np.float32)
    acc = np.zeros(index_map.shape + (3, ), np.float32)
    for k in np.unique(index_map):
        weight = _blur(index_map == k, sigma)
        total += weight
        acc += weight[:, :, None] * sources[k]
    acc /= total[:, :, None]
    return np.clip(np.rint(acc), 0, 255).astype(np.uint8)


def fuse(candidates: Sequence[np.ndarray],
         scores: Sequence[np.ndarray],
         fallback: Optional[np.ndarray] = None,
         cfg: FusionConfig = FusionConfig(),
         names: Optional[Sequence[str]] = None) -> FusionResult:
    """Fuse candidates region by region, each region from the candidate with the lowest artifact score there.

    Args:
        candidates (Sequence[np.ndarray]): ``N >= 2`` candidate images, ``HxWx3`` uint8, one size; the order is
            the preference order among equally good candidates.
        scores (Sequence[np.ndarray]): ``N`` artifact score maps (``HxW``, high = artifact), e.g.
            :func:`desra_scores` or an artifact localiser's probability maps.
        fallback (np.ndarray | None): Source of last resort (the MSE-SR output), used where every candidate's
            spread score reaches ``cfg.artifact_threshold``.
        cfg (FusionConfig): Settings.
        names (Sequence[str] | None): Names of the candidates, then of the fallback, for error messages.

    Returns:
        FusionResult: Fused image, index map and shares.

    Raises:
        ValueError: Fewer than two candidates, images of different sizes or types, or a score map count or size
            that does not match the candidates.
    """
    check_candidates(candidates, fallback, names)
    if len(scores) != len(candidates):
        raise ValueError(f'fusion needs one score map per candidate: {len(candidates)} candidates, '
                         f'{len(scores)} score maps')
    if np.asarray(scores[0]).shape != np.asarray(candidates[0]).shape[:2]:
        raise ValueError(f'score maps have shape {np.asarray(scores[0]).shape}, the candidates '
                         f'{np.asarray(candidates[0]).shape[:2]}')
    index_map = choose_sources(scores, cfg, has_fallback=fallback is not None)
    sources = list(candidates) + ([] if fallback is None else [fallback])
    image = feather_blend(sources, index_map, cfg.feather_sigma)
    shares = np.bincount(index_map.ravel(), minlength=len(sources)) / index_map.size
    return FusionResult(image=image, index_map=index_map, shares=shares)
