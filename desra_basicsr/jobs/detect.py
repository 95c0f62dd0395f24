"""Detection job: artifact masks for folders of GAN-SR outputs (paired by file stem with their MSE-SR twins).

Writes, for each image ``<stem>``:

* ``OUT/<stem>.png``: uint8 0/255 mask (255 = artifact) of the image size;
* with ``save_maps``: the method's maps (``OUT/maps/<stem>_D.npy``, float32 indicator before the semantic
  adjustment; ``<stem>_prob.npy`` for the localiser) and, when semantics are on, ``OUT/maps/<stem>_D_adjusted.npy``
  and ``OUT/maps/<stem>_seg.png`` (colour label map);
* ``OUT/summary.json`` (:mod:`desra_basicsr.jobs.core`): the settings the method uses (with semantics, a SHA-256 of
  the segmentation config as merged with its ``_base_`` files, so that a config edited in place is other settings),
  and per image ``artifact_fraction``, ``n_regions``, ``height``, ``width`` (:class:`DetectRecord`), or the error
  ``message``.

Every method of :data:`METHODS` declares what it needs: DeSRA-det and the LDL
baselines compare against the MSE-SR outputs; ``method='localizer'`` detects from the GAN-SR images alone with a
trained artifact localiser (:mod:`desra_basicsr.localizer`): artifact where its probability is at least
``prob_threshold``, holes filled and regions of at most ``min_area`` pixels dropped.

The device is not part of the recorded settings: a folder started on one device resumes on another (the outputs
are those of the same method and settings), and a run whose device failed does not block a run on another.

Example::

    from desra_basicsr.jobs.detect import DetectRecord, DetectSettings, run
    result = run(DetectSettings(mse='sr/mse', gan='sr/gan', out='masks', threshold=0.7))
    print(DetectRecord.done(result)['chelsea'].artifact_fraction)
"""
import hashlib
import os.path as osp
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, Dict, Literal, Optional, Tuple

from desra_basicsr.constants import DETECT_THRESHOLD, MIN_AREA
from desra_basicsr.detection.methods import METHODS as DESRA_METHODS
from desra_basicsr.detection.methods import Method
from desra_basicsr.errors import DesraSettingsError, settings_phase
from desra_basicsr.folders import check_out_dir, pair_inputs
from desra_basicsr.jobs.core import FolderJob, JobItem, JobResult, dist_info, local_rank, run_job
from desra_basicsr.jobs.records import ItemRecord
from desra_basicsr.localizer.method import LOCALIZER_METHOD
from desra_basicsr.settings import Settings, flag_of, setting
from desra_basicsr.utils import notice

if TYPE_CHECKING:
    from desra_basicsr.detection.class_weights import ClassWeights
    from desra_basicsr.detection.segmenters import Segmenter

#: The methods of ``desra detect --method``: DeSRA-det, its ablations and baselines, and the artifact localiser.
METHODS: Dict[str, Method] = {**DESRA_METHODS, 'localizer': LOCALIZER_METHOD}
#: Largest pixel count of the area options (a 32k x 32k image).
MAX_AREA = 1 << 30
#: Largest threshold of the (semantically adjusted) indicator map.
MAX_THRESHOLD = 10.0
#: Values of ``semantic``, ``segment_input`` and ``numerator``.
SEMANTIC_BACKENDS = ('none', 'mmseg')
SEGMENT_INPUTS = ('gan', 'mse')
NUMERATORS = ('release', 'paper')
#: Settings of the segmentation, recorded when it is on.
SEGMENTATION_SETTINGS = ('seg_config', 'seg_checkpoint', 'class_table', 'segment_input')


@dataclass(frozen=True)
class DetectSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        gan (str): Folder of GAN-SR outputs.
        out (str): Output folder (masks, ``maps/``, ``summary.json``).
        mse (str | None): Folder of MSE-SR outputs, same file stems (every method but ``localizer``).
        method (str): A name of :data:`METHODS`.
        semantic (str | None): Segmenter backend, ``'none'`` or ``'mmseg'``; None: mmseg when ``seg_checkpoint``
            is given, otherwise none (all class weights 1).
        seg_config (str | None): mmseg config (default: SegFormer mit-b5 ADE20K 640x640 from the mmseg wheel).
        seg_checkpoint (str | None): mmseg checkpoint.
        class_table (str | None): Class-weight table (default: the DeSRA release table), matched to the
            segmentation model's classes by name.
        segment_input (str): Image segmented: ``'gan'`` (the release) or ``'mse'``.
        threshold (float): Artifact where the adjusted map is below this.
        min_area (int): Regions of at most this many pixels are dropped.
        min_area_ref (int | None): Image area ``min_area`` is meant for; scales it per image when set.
        numerator (str): ``'release'`` (``+C``) or ``'paper'`` (eq. 7).
        localizer_config (str | None): ``localizer_config.py`` of ``desra localizer train`` (method localizer).
        localizer_checkpoint (str | None): The matching ``localizer.pth`` (method localizer).
        prob_threshold (float): Method localizer: artifact where the probability is at least this.
        device (str): ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun, each rank takes its own GPU).
        save_maps (bool): Also save the method's maps (and the segmentation).
        overwrite (bool): Recompute every output even when an earlier run with other settings wrote them.
        progress (bool): Show a progress bar.
    """
    gan: str = setting(kind='path')
    out: str = setting(kind='path')
    mse: Optional[str] = setting(None, kind='path')
    method: str = 'desra'
    semantic: Optional[Literal[SEMANTIC_BACKENDS]] = None
    seg_config: Optional[str] = setting(None, kind='path')
    seg_checkpoint: Optional[str] = setting(None, kind='path')
    class_table: Optional[str] = setting(None, kind='path')
    segment_input: Literal[SEGMENT_INPUTS] = 'gan'
    threshold: float = setting(DETECT_THRESHOLD, lo=0, hi=MAX_THRESHOLD)
    min_area: int = setting(MIN_AREA, lo=0, hi=MAX_AREA)
    min_area_ref: Optional[int] = setting(None, lo=1, hi=MAX_AREA)
    numerator: Literal[NUMERATORS] = 'release'
    localizer_config: Optional[str] = setting(None, kind='path')
    localizer_checkpoint: Optional[str] = setting(None, kind='path')
    prob_threshold: float = setting(0.5, lo=0, lo_open=True, hi=1)
    device: str = setting('cpu', kind='device')
    save_maps: bool = False
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        """The method exists and has what it needs (MSE-SR outputs, its files); the class table exists."""
        if self.method not in METHODS:
            raise DesraSettingsError(f'--method {self.method}: unknown; choose from {", ".join(sorted(METHODS))}')
        method = METHODS[self.method]
        if method.needs_mse and not self.mse:
            raise DesraSettingsError(f'--method {self.method} compares against MSE-SR outputs: give --mse (or use a '
                                     'method that needs none: ' +
                                     ', '.join(name for name, m in sorted(METHODS.items()) if not m.needs_mse) + ')')
        missing = [flag_of(f) for f in fields(self) if f.name in method.files and not getattr(self, f.name)]
        if missing:
            raise DesraSettingsError(f'--method {self.method} needs {" and ".join(missing)}')
        if self.class_table and not osp.isfile(self.class_table):  # before the slow segmenter build
            raise DesraSettingsError(f'{self.class_table}: class table file not found')


@dataclass(frozen=True)
class DetectRecord(ItemRecord):
    """``summary.json`` record of one detected image.

    Attributes:
        artifact_fraction (float): Fraction of the pixels marked as artifact.
        n_regions (int): 8-connected artifact regions.
        height (int): Image height.
        width (int): Image width.
    """
    artifact_fraction: float
    n_regions: int
    height: int
    width: int


@dataclass(frozen=True)
class Semantics:
    """The segmentation of a run.

    Attributes:
        backend (str): ``'none'`` (no segmentation, all class weights 1) or ``'mmseg'``.
        segmenter (Segmenter): The segmenter (the ``none`` backend's when off).
        class_weights (ClassWeights | None): The class table matched to it (None when off).
    """
    backend: str
    segmenter: 'Segmenter'
    class_weights: Optional['ClassWeights'] = None

    @property
    def on(self) -> bool:
        """Whether a segmenter runs."""
        return self.backend != 'none'


def run(settings: DetectSettings) -> JobResult:
    """Detect the artifacts of every GAN-SR output with the chosen method.

    Args:
        settings (DetectSettings): What to detect, how and where to write it.

    Returns:
        JobResult: Counts of this run; ``items`` holds each image's record (:class:`DetectRecord`).

    Raises:
        DesraSettingsError: For unusable settings (a device that is not there included), before any work.
    """
    method = METHODS[settings.method]
    if settings.mse and not method.needs_mse:
        notice(f'--mse {settings.mse}: not used by --method {settings.method} (it detects from the GAN-SR images '
               'alone)')
    inputs = {'mse': settings.mse, 'gan': settings.gan} if method.needs_mse else {'gan': settings.gan}
    check_out_dir(settings.out, inputs)
    pairs, failures = pair_inputs(inputs)
    with settings_phase():
        semantics, detector = _build(settings, method)
    from desra_basicsr.image_io import stem
    outputs = _output_paths(settings, method, semantics)
    items = [JobItem(stem(paths[-1]), tuple(paths), outputs(stem(paths[-1]))) for paths in pairs]
    recorded, hashed = _recorded_settings(settings, method, semantics)
    return run_job(
        FolderJob(
            command='detect',
            out_dir=settings.out,
            input_dirs=inputs,
            settings=recorded,
            items=items,
            process=_processor(settings, method, semantics, detector),
            weights=hashed,
            failures=failures),
        overwrite=settings.overwrite,
        progress=settings.progress)


def _build(settings: DetectSettings, method: Method) -> Tuple[Semantics, Any]:
    """The device check, the segmentation and the detector of a run (slow: models are loaded)."""
    import cv2
    import torch

    from desra_basicsr.detection.class_weights import load_class_weights
    from desra_basicsr.detection.methods import build_detector
    from desra_basicsr.detection.morphology import MorphologyConfig
    from desra_basicsr.detection.segmenters import build_segmenter
    from desra_basicsr.devices import resolve_device

    device = str(resolve_device(settings.device, local_rank()))
    if dist_info()[1] > 1:
        # torchrun sets OMP_NUM_THREADS=1 per rank (unless the user set it) so that N ranks do not each start a
        # thread per core; the indicator's strip pool follows OpenCV's thread count, so give it the same budget.
        cv2.setNumThreads(torch.get_num_threads())
    backend = settings.semantic or ('mmseg' if settings.seg_checkpoint else 'none')
    if not method.semantics:
        backend = 'none'
    elif backend == 'none':
        notice("no segmentation (--semantic none or no --seg-checkpoint): all class weights are 1, the paper's "
               "'without semantics' ablation")
    segmenter = build_segmenter(backend, config=settings.seg_config, checkpoint=settings.seg_checkpoint, device=device)
    semantics = Semantics(backend, segmenter)
    if semantics.on:
        semantics = Semantics(backend, segmenter, load_class_weights(settings.class_table,
                                                                     tuple(segmenter.class_names)))
    detector = build_detector(
        method,
        morphology=MorphologyConfig(
            threshold=settings.threshold, min_area=settings.min_area, min_area_reference=settings.min_area_ref),
        segmenter=segmenter,
        class_weights=semantics.class_weights,
        segment_input=settings.segment_input,
        numerator=settings.numerator,
        device=device,
        localizer_config=settings.localizer_config,
        localizer_checkpoint=settings.localizer_checkpoint,
        prob_threshold=settings.prob_threshold)
    return semantics, detector


def _output_paths(settings: DetectSettings, method: Method, semantics: Semantics) -> Callable[[str], Tuple[str, ...]]:
    """Image stem -> its outputs: the mask, then the method's maps, then the semantic maps (with ``save_maps``)."""
    maps_dir = osp.join(settings.out, 'maps')

    def outputs(name: str) -> Tuple[str, ...]:
        paths = [osp.join(settings.out, f'{name}.png')]
        if settings.save_maps:
            paths += [osp.join(maps_dir, f'{name}_{suffix}.npy') for suffix, _ in method.maps]
            if semantics.on:
                paths += [osp.join(maps_dir, f'{name}_D_adjusted.npy'), osp.join(maps_dir, f'{name}_seg.png')]
        return tuple(paths)

    return outputs


def _recorded_settings(settings: DetectSettings, method: Method,
                       semantics: Semantics) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """What ``summary.json`` records (the settings the method uses, with semantics the digest of the segmentation
    config) and the files hashed into it."""
    recorded: Dict[str, Any] = {'mse': settings.mse if method.needs_mse else None, 'gan': settings.gan,
                                'method': settings.method, 'semantic': semantics.backend}
    recorded.update((name, getattr(settings, name)) for name in method.settings + method.files)
    hashed = {name: getattr(settings, name) for name in method.files}
    if semantics.on:
        recorded.update((name, getattr(settings, name)) for name in SEGMENTATION_SETTINGS)
        recorded.update(seg_config=osp.abspath(semantics.segmenter.config_path),
                        seg_config_sha256=_config_digest(semantics.segmenter.config_path),
                        class_table=osp.abspath(semantics.class_weights.source))
        hashed.update(seg_checkpoint=settings.seg_checkpoint, class_table=semantics.class_weights.source)
    return recorded, hashed


def _config_digest(path: str) -> str:
    """SHA-256 of an mmseg config as mmengine merges it with its ``_base_`` files (its ``pretty_text``).

    An edit of the config, or of a base file, that changes a value changes the digest; one of comments or layout
    does not. Only mmengine is imported, not mmseg.

    Args:
        path (str): The config file.

    Returns:
        str: The digest, hex.
    """
    from mmengine.config import Config
    return hashlib.sha256(Config.fromfile(path).pretty_text.encode('utf-8')).hexdigest()


def _processor(settings: DetectSettings, method: Method, semantics: Semantics,
               detector: Any) -> Callable[[JobItem], Dict[str, Any]]:
    """The work on one image: read, detect, write the mask (and maps), return its record."""
    import numpy as np

    from desra_basicsr.evaluation.sweep import checked_pair
    from desra_basicsr.image_io import read_image, write_image, write_mask
    from desra_basicsr.utils import atomic_write_path

    palette = np.random.default_rng(0).integers(0, 256, (max(semantics.segmenter.num_classes, 1), 3), dtype=np.uint8)

    def save_npy(path: str, array: np.ndarray) -> None:
        with atomic_write_path(path) as tmp:
            np.save(tmp, array.astype(np.float32))

    def process(item: JobItem) -> Dict[str, Any]:
        gan_path = item.inputs[-1]
        y_gan = read_image(gan_path)
        y_mse = read_image(item.inputs[0]) if method.needs_mse else None
        with checked_pair(y_mse, y_gan, item.inputs[0], gan_path):
            result = detector.detect(y_mse, y_gan)
        if settings.save_maps:
            for path, (_, attribute) in zip(item.outputs[1:], method.maps):
                save_npy(path, getattr(result, attribute))
            if semantics.on:
                save_npy(item.outputs[-2], result.adjusted)
                write_image(item.outputs[-1], palette[result.labels % len(palette)][:, :, ::-1])
        write_mask(item.outputs[0], result.mask)
        return DetectRecord(round(result.artifact_fraction, 6), result.n_regions, int(y_gan.shape[0]),
                            int(y_gan.shape[1])).fields()

    return process
