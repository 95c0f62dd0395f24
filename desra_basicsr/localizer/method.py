"""The artifact localiser as a detection method (``desra detect --method localizer``).

It declares what it needs like the methods of :data:`desra_basicsr.detection.methods.METHODS`: no MSE-SR output, the
morphology's area settings and its probability threshold, the trained config and checkpoint (recorded by SHA-256),
and the probability map for ``--save-maps``. The detection job offers it beside those methods.
"""
from typing import Any

from desra_basicsr.detection.methods import DetectorParts, Method


def _build(parts: DetectorParts) -> Any:
    """A trained artifact localiser on the GAN-SR image alone (:mod:`desra_basicsr.localizer.predictor`)."""
    from desra_basicsr.localizer.predictor import ArtifactLocalizer, LocalizerDetector, localizer_morphology
    steps = parts.steps()
    return LocalizerDetector(
        ArtifactLocalizer(parts.localizer_config, parts.localizer_checkpoint, device=parts.device),
        localizer_morphology(steps.min_area, steps.min_area_reference), parts.prob_threshold)


LOCALIZER_METHOD = Method(
    'trained artifact localiser on the GAN-SR image alone (no --mse; desra localizer train)',
    _build,
    needs_mse=False,
    settings=('min_area', 'min_area_ref', 'prob_threshold'),
    files=('localizer_config', 'localizer_checkpoint'),
    maps=(('prob', 'probability'), ))
