"""Artifact-probability maps from a trained localiser, and a detector built on them (no MSE-SR twin needed).

The model is loaded and run by :class:`desra_basicsr.detection.mmseg_segmenter.MMSegSegmenter` (same config
handling, checkpoint checks and preprocessing as the semantic segmenter of DeSRA-det); the localiser adds the
softmax probability of the ``artifact`` class, resized bilinearly to the image size.

:class:`LocalizerDetector` has the detector interface of :mod:`desra_basicsr.detection.methods`
(``detect(y_mse, y_gan) -> DetectionResult``; ``y_mse`` is ignored and may be None): artifact where the
probability is at least ``prob_threshold``, then the hole filling and area filter of DeSRA-det step 5. The
localiser learnt masks that were already eroded and dilated (DeSRA-det's morphology), so its output is not eroded
or dilated again by default.
"""
import os.path as osp
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from desra_basicsr.detection.detector import DetectionResult
from desra_basicsr.detection.morphology import MorphologyConfig, clean_mask
from desra_basicsr.errors import DesraInputError
from desra_basicsr.localizer.classes import CLASSES

#: Probability at or above which a pixel is an artifact.
DEFAULT_PROB_THRESHOLD = 0.5


def localizer_morphology(min_area: int = 4000, min_area_reference: Optional[int] = None) -> MorphologyConfig:
    """DeSRA-det step 5 for localiser masks: fill holes and drop small regions, no erosion or dilation.

    Args:
        min_area (int): Regions with area <= this are dropped.
        min_area_reference (int | None): Image area ``min_area`` is meant for (see
            :class:`~desra_basicsr.detection.morphology.MorphologyConfig`).

    Returns:
        MorphologyConfig: The settings (its ``threshold`` is unused: the probability threshold applies instead).
    """
    return MorphologyConfig(
        erode_iterations=0, dilate_iterations=0, min_area=min_area, min_area_reference=min_area_reference)


def probability_mask(prob: np.ndarray, prob_threshold: float, morphology: MorphologyConfig) -> Tuple[np.ndarray, int]:
    """The localiser's artifact mask from its probability map: at least ``prob_threshold``, then step 5.

    Args:
        prob (np.ndarray): ``HxW`` artifact probabilities.
        prob_threshold (float): Artifact where the probability is at least this.
        morphology (MorphologyConfig): Step-5 settings (e.g. :func:`localizer_morphology`).

    Returns:
        tuple: The bool mask and its number of regions.
    """
    return clean_mask(prob >= prob_threshold, morphology)


class ArtifactLocalizer:
    """A trained localiser (``desra localizer train``) predicting artifact probabilities.

    Args:
        config (str): The ``localizer_config.py`` written by training (or any two-class mmseg config).
        checkpoint (str): The matching ``localizer.pth``.
        device (str): ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.

    Raises:
        DesraInputError: Missing files, or a config / checkpoint that is not a two-class mmseg model.
    """

    def __init__(self, config: str, checkpoint: str, device: str = 'cpu') -> None:
        from desra_basicsr.detection.mmseg_segmenter import MMSegSegmenter
        if not config or not checkpoint:
            raise DesraInputError('the localiser needs --localizer-config and --localizer-checkpoint (the '
                                  'localizer_config.py and localizer.pth written by desra localizer train)')
        for path, option in ((config, '--localizer-config'), (checkpoint, '--localizer-checkpoint')):
            if not osp.isfile(path):
                raise DesraInputError(f'{path}: {option} not found (desra localizer train writes it)')
        self.segmenter = MMSegSegmenter(config=config, checkpoint=checkpoint, device=device, class_names=CLASSES)
        self.config_path = config
        self.checkpoint_path = checkpoint

    @torch.no_grad()
    def probability(self, img: np.ndarray) -> np.ndarray:
        """Artifact probability of each pixel.

        Args:
            img (np.ndarray): ``HxWx3`` uint8 BGR image (a GAN-SR output), any size.

        Returns:
            np.ndarray: ``HxW`` float32 probabilities in [0, 1].
        """
        logits = self.segmenter.logits(img)[None].float()
        if logits.shape[-2:] != img.shape[:2]:
            logits = F.interpolate(logits, size=img.shape[:2], mode='bilinear', align_corners=False)
        return logits.softmax(dim=1)[0, 1].cpu().numpy()


class LocalizerDetector:
    """Detector interface over a localiser: probability threshold, hole filling, area filter.

    Args:
        localizer (ArtifactLocalizer): The trained localiser.
        morphology (MorphologyConfig | None): Step-5 settings; None uses :func:`localizer_morphology`.
        prob_threshold (float): Artifact where the probability is at least this.

    Raises:
        ValueError: If ``prob_threshold`` is not in (0, 1].
    """

    def __init__(self,
                 localizer: ArtifactLocalizer,
                 morphology: Optional[MorphologyConfig] = None,
                 prob_threshold: float = DEFAULT_PROB_THRESHOLD) -> None:
        if not 0 < prob_threshold <= 1:
            raise ValueError(f'--prob-threshold must be in (0, 1], got {prob_threshold}')
        self.localizer = localizer
        self.morphology = morphology if morphology is not None else localizer_morphology()
        self.prob_threshold = prob_threshold

    def detect(self, y_mse: Optional[np.ndarray], y_gan: np.ndarray) -> DetectionResult:
        """Artifact mask of a GAN-SR output, from the image alone.

        Args:
            y_mse (np.ndarray | None): Ignored (the localiser needs no MSE-SR twin).
            y_gan (np.ndarray): ``HxWx3`` uint8 BGR GAN-SR output.

        Returns:
            DetectionResult: The mask; ``d_map`` and ``adjusted`` hold ``1 - probability`` (low = artifact, as
            DeSRA's indicator), ``probability`` the probability itself.
        """
        prob = self.localizer.probability(y_gan)
        mask, n_regions = probability_mask(prob, self.prob_threshold, self.morphology)
        return DetectionResult(mask=mask, n_regions=n_regions, d_map=1 - prob, adjusted=1 - prob, probability=prob)
