"""Detection methods selectable by name (``desra detect --method``): DeSRA-det, its ablations, baselines.

Each entry of :data:`METHODS` says whether the method uses semantic segmentation and how to build its detector.
A detector is any object with ``detect(y_mse, y_gan) -> DetectionResult`` on ``HxWx3`` uint8 BGR images.
Adding a method is one entry: a :class:`Method` whose ``build`` takes the keyword arguments of
:func:`build_detector` (ignoring those it does not need). The builders import the detectors when called, so the
method list itself (``desra detect --help``) loads neither numpy nor torch.
"""
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Callable, Dict, Optional

if TYPE_CHECKING:
    from desra_basicsr.detection.class_weights import ClassWeights
    from desra_basicsr.detection.detector import DeSRADetector
    from desra_basicsr.detection.morphology import MorphologyConfig
    from desra_basicsr.detection.segmenters import Segmenter


@dataclass(frozen=True)
class Method:
    """A named detection method.

    Attributes:
        description (str): One line for ``--help``.
        semantics (bool): Whether the method uses the segmenter (when False, none is built).
        build (Callable): Keyword arguments of :func:`build_detector` -> detector.
    """
    description: str
    semantics: bool
    build: Callable[..., object]


def _desra(mode: str,
           morphology: 'MorphologyConfig',
           segmenter: Optional['Segmenter'] = None,
           class_weights: Optional['ClassWeights'] = None,
           segment_input: str = 'gan',
           numerator: str = 'release',
           device: str = 'cpu') -> 'DeSRADetector':
    """DeSRA-det with the given indicator mode."""
    from desra_basicsr.detection.detector import DeSRADetector
    from desra_basicsr.detection.indicator import IndicatorConfig
    return DeSRADetector(
        indicator=IndicatorConfig(mode=mode, numerator=numerator),
        morphology=morphology,
        segmenter=segmenter,
        class_weights=class_weights,
        segment_input=segment_input,
        device=device)


def _ldl(threshold: float, **kwargs) -> object:
    """The LDL baseline at ``threshold`` (see :func:`desra_basicsr.detection.ldl_baseline.build_ldl_detector`)."""
    from desra_basicsr.detection.ldl_baseline import build_ldl_detector
    return build_ldl_detector(threshold, **kwargs)


METHODS: Dict[str, Method] = {
    'desra': Method('DeSRA-det: relative texture difference, semantic weights, morphology', True,
                    partial(_desra, 'relative')),
    'desra-absolute': Method('ablation: plain squared difference of texture complexities', True,
                             partial(_desra, 'absolute')),
    'desra-no-norm': Method('ablation: squared difference not normalised by the local texture energy', True,
                            partial(_desra, 'no_norm')),
    'desra-no-semantics': Method('ablation: DeSRA-det with all class weights 1', False, partial(_desra, 'relative')),
    'ldl-0.01': Method('baseline: LDL artifact map (MSE-SR as reference) > 0.01', False,
                       partial(_ldl, 0.01)),
    'ldl-0.005': Method('baseline: LDL artifact map (MSE-SR as reference) > 0.005', False,
                        partial(_ldl, 0.005)),
    'ldl-0.001': Method('baseline: LDL artifact map (MSE-SR as reference) > 0.001', False,
                        partial(_ldl, 0.001)),
}


def build_detector(method: str, **kwargs) -> object:
    """Build the detector of a named method.

    Args:
        method (str): A key of :data:`METHODS`.
        **kwargs: ``morphology`` (MorphologyConfig), ``segmenter``, ``class_weights``, ``segment_input``,
            ``numerator``, ``device``. The segmenter is dropped for methods without semantics.

    Returns:
        object: A detector (``detect(y_mse, y_gan) -> DetectionResult``).

    Raises:
        ValueError: For an unknown method name.
    """
    if method not in METHODS:
        raise ValueError(f'unknown detection method {method!r}; choose from {sorted(METHODS)}')
    entry = METHODS[method]
    if not entry.semantics:
        kwargs['segmenter'] = None
    return entry.build(**kwargs)
