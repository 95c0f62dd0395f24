"""Detection methods selectable by name (``desra detect --method``): DeSRA-det, its ablations and baselines.

Each entry of :data:`METHODS` declares what the method needs and what it writes, so the detection job
(:mod:`desra_basicsr.jobs.detect`) treats every method the same way:

* ``needs_mse``: whether it compares against the MSE-SR output (the artifact localiser, whose entry
  :data:`desra_basicsr.localizer.method.LOCALIZER_METHOD` sits in the localiser's package, does not);
* ``semantics``: whether it uses the segmenter (when False, none is built);
* ``settings``: the options of the detection job it uses, recorded in ``summary.json`` (an option a method ignores
  is not recorded, so changing it does not refuse a folder the method wrote);
* ``files``: the options naming files it reads (recorded as absolute paths and by SHA-256);
* ``maps``: what ``--save-maps`` writes, ``OUT/maps/<stem>_<suffix>.npy`` from a
  :class:`~desra_basicsr.detection.detector.DetectionResult` attribute.

A detector is any object with ``detect(y_mse, y_gan) -> DetectionResult`` on ``HxWx3`` uint8 BGR images. Adding a
method is one entry: a :class:`Method` whose ``build`` takes the :class:`DetectorParts` of a run. The builders
import the detectors when called, so the method list itself (``desra detect --help``) loads neither numpy nor torch.
"""
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple, Union

if TYPE_CHECKING:
    from desra_basicsr.detection.class_weights import ClassWeights
    from desra_basicsr.detection.morphology import MorphologyConfig
    from desra_basicsr.detection.segmenters import Segmenter

#: Settings of DeSRA-det and its ablations (steps 4-5 and the indicator's numerator).
DESRA_SETTINGS = ('threshold', 'min_area', 'min_area_ref', 'numerator')
#: ``--save-maps`` of the methods that compute an indicator-like map: ``<stem>_D.npy`` (before the semantic step).
D_MAP = (('D', 'd_map'), )


@dataclass(frozen=True)
class DetectorParts:
    """What a detector is built from; each method uses the parts its :class:`Method` declares.

    Attributes:
        morphology (MorphologyConfig | None): Steps 4-5 (threshold, area filter); None: the defaults.
        segmenter (Segmenter | None): Segmenter of the semantic methods (None: no segmentation).
        class_weights (ClassWeights | None): Class table matched to the segmenter (None: the release table).
        segment_input (str): Image segmented: ``'gan'`` or ``'mse'``.
        numerator (str): Indicator numerator: ``'release'`` or ``'paper'``.
        device (str): ``cpu``, ``cuda`` or ``cuda:N``.
        localizer_config (str | None): ``localizer_config.py`` of a trained localiser.
        localizer_checkpoint (str | None): The matching ``localizer.pth``.
        prob_threshold (float): Localiser: artifact where the probability is at least this.
    """
    morphology: Optional['MorphologyConfig'] = None
    segmenter: Optional['Segmenter'] = None
    class_weights: Optional['ClassWeights'] = None
    segment_input: str = 'gan'
    numerator: str = 'release'
    device: str = 'cpu'
    localizer_config: Optional[str] = None
    localizer_checkpoint: Optional[str] = None
    prob_threshold: float = 0.5

    def steps(self) -> 'MorphologyConfig':
        """The morphology settings (the defaults when none are given)."""
        from desra_basicsr.detection.morphology import MorphologyConfig
        return self.morphology if self.morphology is not None else MorphologyConfig()


@dataclass(frozen=True)
class Method:
    """A named detection method and what it needs (see the module docstring).

    Attributes:
        description (str): One line for ``--help``.
        build (Callable): :class:`DetectorParts` -> detector.
        semantics (bool): Whether the method uses the segmenter.
        needs_mse (bool): Whether it compares against the MSE-SR output.
        settings (tuple[str, ...]): Detection-job options it uses.
        files (tuple[str, ...]): Detection-job options naming files it reads.
        maps (tuple[tuple[str, str], ...]): ``(suffix, DetectionResult attribute)`` of each map it saves.
    """
    description: str
    build: Callable[[DetectorParts], Any]
    semantics: bool = False
    needs_mse: bool = True
    settings: Tuple[str, ...] = ()
    files: Tuple[str, ...] = ()
    maps: Tuple[Tuple[str, str], ...] = field(default=D_MAP)


def _desra(mode: str, parts: DetectorParts) -> Any:
    """DeSRA-det with the given indicator mode."""
    from desra_basicsr.detection.detector import DeSRADetector
    from desra_basicsr.detection.indicator import IndicatorConfig
    return DeSRADetector(
        indicator=IndicatorConfig(mode=mode, numerator=parts.numerator),
        morphology=parts.steps(),
        segmenter=parts.segmenter,
        class_weights=parts.class_weights,
        segment_input=parts.segment_input,
        device=parts.device)


def _ldl(threshold: float, parts: DetectorParts) -> Any:
    """The LDL baseline at ``threshold`` (it uses no part: it runs in numpy with its own threshold)."""
    from desra_basicsr.detection.ldl_baseline import build_ldl_detector
    return build_ldl_detector(threshold)


def _desra_method(description: str, mode: str, semantics: bool = True) -> Method:
    return Method(description, partial(_desra, mode), semantics=semantics, settings=DESRA_SETTINGS)


def _ldl_method(threshold: float) -> Method:
    return Method(f'baseline: LDL artifact map (MSE-SR as reference) > {threshold:g}', partial(_ldl, threshold))


METHODS: Dict[str, Method] = {
    'desra': _desra_method('DeSRA-det: relative texture difference, semantic weights, morphology', 'relative'),
    'desra-absolute': _desra_method('ablation: plain squared difference of texture complexities', 'absolute'),
    'desra-no-norm': _desra_method('ablation: squared difference not normalised by the local texture energy',
                                   'no_norm'),
    'desra-no-semantics': _desra_method('ablation: DeSRA-det with all class weights 1', 'relative', semantics=False),
    'ldl-0.01': _ldl_method(0.01),
    'ldl-0.005': _ldl_method(0.005),
    'ldl-0.001': _ldl_method(0.001),
}


def build_detector(method: Union[str, Method], **parts: Any) -> Any:
    """Build the detector of a method.

    Args:
        method (str | Method): A key of :data:`METHODS`, or a method defined elsewhere (the artifact localiser's,
            :data:`desra_basicsr.localizer.method.LOCALIZER_METHOD`).
        **parts: Fields of :class:`DetectorParts` (``morphology``, ``segmenter``, ``class_weights``,
            ``segment_input``, ``numerator``, ``device``, ...). The segmenter is dropped for methods without
            semantics.

    Returns:
        object: A detector (``detect(y_mse, y_gan) -> DetectionResult``).

    Raises:
        ValueError: For an unknown method name.
    """
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f'unknown detection method {method!r}; choose from {sorted(METHODS)}')
        method = METHODS[method]
    built = DetectorParts(**parts)
    return method.build(built if method.semantics else replace(built, segmenter=None))
