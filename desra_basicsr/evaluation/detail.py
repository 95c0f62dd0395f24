"""How much GAN-SR detail a fine-tuned model keeps outside the detected artifact regions.

DeSRA's fine-tune must remove the artifacts without turning the GAN-SR model into its MSE-SR twin (the paper's user
study, section 4.3, found the fine-tuned model more detailed than MSE-SR in 93 % of cases). Outside the masks
detected before fine-tuning, the pseudo-GT is the GAN-SR output itself (eq. 10), so that is where the detail must
survive. Two numbers per image, over the pixels outside the before-mask:

* ``std_ratio``: mean local standard deviation (the Gaussian 11x11, sigma 1.5 texture complexity of DeSRA-det) of
  the fine-tuned output over that of the GAN-SR output; 1.0 = as detailed as GAN-SR, the MSE-SR output's own
  ratio shows where a model that became its MSE twin would land;
* ``mad``: mean absolute difference of the fine-tuned and the GAN-SR outputs, in grey levels.
"""
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from desra_basicsr.detection.indicator import local_variance


def mean_local_std(img: np.ndarray, where: np.ndarray) -> float:
    """Mean local standard deviation of ``img`` (mean over channels) over the pixels where ``where`` is True.

    Args:
        img (np.ndarray): HxWx3 uint8 image.
        where (np.ndarray): HxW bool selection.

    Returns:
        float: The mean, in grey levels; 0.0 when nothing is selected.
    """
    if not where.any():
        return 0.0
    std = np.sqrt(local_variance(img)).mean(axis=2)
    return float(std[where].mean())


def detail_outside(gan: np.ndarray, candidate: np.ndarray, mask: np.ndarray) -> Dict[str, float]:
    """Detail of ``candidate`` relative to the GAN-SR output outside an artifact mask.

    Args:
        gan (np.ndarray): HxWx3 uint8 GAN-SR output.
        candidate (np.ndarray): HxWx3 uint8 output to judge (fine-tuned model, or MSE-SR for reference).
        mask (np.ndarray): HxW mask detected on the GAN-SR output before fine-tuning (nonzero = artifact).

    Returns:
        dict: ``std_ratio`` and ``mad`` (see the module docstring) and ``outside`` (fraction of the image outside
        the mask). Both measures are NaN when the mask covers the whole image.

    Raises:
        ValueError: If the shapes differ.
    """
    if gan.shape != candidate.shape or gan.shape[:2] != mask.shape[:2]:
        raise ValueError(f'shapes differ: GAN-SR {gan.shape}, candidate {candidate.shape}, mask {mask.shape}')
    outside = ~mask.astype(bool)
    if not outside.any():
        return {'std_ratio': float('nan'), 'mad': float('nan'), 'outside': 0.0}
    gan_std = mean_local_std(gan, outside)
    diff = np.abs(gan.astype(np.int16) - candidate.astype(np.int16)).mean(axis=2)
    return {
        'std_ratio': mean_local_std(candidate, outside) / gan_std if gan_std > 0 else float('nan'),
        'mad': float(diff[outside].mean()),
        'outside': float(outside.mean())
    }


@dataclass
class DetailSummary:
    """Mean of :func:`detail_outside` over a data set (images whose mask covers everything are left out).

    Attributes:
        per_image (dict): ``{name: detail_outside(...)}``.
    """
    per_image: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def add(self, name: str, gan: np.ndarray, candidate: np.ndarray, mask: np.ndarray) -> Dict[str, float]:
        """Measure one image and keep its values.

        Args:
            name (str): Image name.
            gan (np.ndarray): GAN-SR output.
            candidate (np.ndarray): Output to judge.
            mask (np.ndarray): Before-fine-tuning mask.

        Returns:
            dict: This image's values.
        """
        self.per_image[name] = detail_outside(gan, candidate, mask)
        return self.per_image[name]

    def mean(self, key: str) -> Optional[float]:
        """Mean of one value over the images where it is defined (None when there is none)."""
        values = [v[key] for v in self.per_image.values() if not np.isnan(v[key])]
        return float(np.mean(values)) if values else None
