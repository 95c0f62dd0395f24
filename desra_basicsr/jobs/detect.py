"""Detection job: DeSRA-det artifact masks for folders of MSE-SR / GAN-SR outputs paired by file stem.

Writes, for each pair ``<stem>``:

* ``OUT/<stem>.png``: uint8 0/255 mask (255 = artifact) of the image size;
* with ``save_maps``: ``OUT/maps/<stem>_D.npy`` (float32 indicator before the semantic adjustment) and, when
  semantics are on, ``OUT/maps/<stem>_D_adjusted.npy`` and ``OUT/maps/<stem>_seg.png`` (colour label map);
* ``OUT/summary.json`` (:mod:`desra_basicsr.jobs.core`): per image ``artifact_fraction``, ``n_regions``, ``height``,
  ``width``, or the error ``message``.

``method='localizer'`` detects from the GAN-SR images alone with a trained artifact localiser
(:mod:`desra_basicsr.localizer`; ``mse`` is not used): artifact where its probability is at least
``prob_threshold``, holes filled and regions of at most ``min_area`` pixels dropped; ``save_maps`` writes the
probability as ``OUT/maps/<stem>_prob.npy``.

Example::

    from desra_basicsr.jobs.detect import DetectSettings, run
    result = run(DetectSettings(mse='sr/mse', gan='sr/gan', out='masks', threshold=0.7))
"""
import math
import os.path as osp
from dataclasses import dataclass
from typing import Optional

from desra_basicsr.constants import DETECT_THRESHOLD, MIN_AREA
from desra_basicsr.errors import settings_phase
from desra_basicsr.folders import check_out_dir, pair_inputs
from desra_basicsr.jobs.core import FolderJob, JobItem, JobResult, dist_info, local_rank, notice, run_job

SEMANTIC_BACKENDS = ('none', 'mmseg')
#: ``method`` value of the artifact localiser (not a DeSRA-det variant: it needs no MSE-SR output).
LOCALIZER_METHOD = 'localizer'
SEGMENT_INPUTS = ('gan', 'mse')
NUMERATORS = ('release', 'paper')


@dataclass
class DetectSettings:
    """Settings of :func:`run`.

    Attributes:
        mse (str | None): Folder of MSE-SR outputs (not used by the ``localizer`` method).
        gan (str): Folder of GAN-SR outputs (same file stems).
        out (str): Output folder (masks, ``maps/``, ``summary.json``).
        method (str): A name of :data:`desra_basicsr.detection.methods.METHODS`, or ``'localizer'``.
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
        device (str): ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun, each rank takes its own GPU).
        save_maps (bool): Also save D, adjusted D and the segmentation.
        overwrite (bool): Recompute every output even when an earlier run with other settings wrote them.
        progress (bool): Show a progress bar.
        localizer_config (str | None): ``localizer_config.py`` of ``desra localizer train`` (method localizer).
        localizer_checkpoint (str | None): The matching ``localizer.pth`` (method localizer).
        prob_threshold (float): Method localizer: artifact where the probability is at least this.
    """
    mse: Optional[str]
    gan: str
    out: str
    method: str = 'desra'
    semantic: Optional[str] = None
    seg_config: Optional[str] = None
    seg_checkpoint: Optional[str] = None
    class_table: Optional[str] = None
    segment_input: str = 'gan'
    threshold: float = DETECT_THRESHOLD
    min_area: int = MIN_AREA
    min_area_ref: Optional[int] = None
    numerator: str = 'release'
    device: str = 'cpu'
    save_maps: bool = False
    overwrite: bool = False
    progress: bool = True
    localizer_config: Optional[str] = None
    localizer_checkpoint: Optional[str] = None
    prob_threshold: float = 0.5


def _check(settings: DetectSettings) -> None:
    from desra_basicsr.detection.methods import METHODS
    from desra_basicsr.errors import DesraSettingsError
    if settings.method not in METHODS and settings.method != LOCALIZER_METHOD:
        raise DesraSettingsError(f'--method {settings.method}: unknown; choose from '
                                 f'{", ".join(sorted(METHODS) + [LOCALIZER_METHOD])}')
    if settings.method == LOCALIZER_METHOD:
        if not settings.localizer_config or not settings.localizer_checkpoint:
            raise DesraSettingsError('--method localizer needs --localizer-config and --localizer-checkpoint (the '
                                     'localizer_config.py and localizer.pth written by desra localizer train)')
        if not 0 < settings.prob_threshold <= 1:
            raise DesraSettingsError(f'--prob-threshold {settings.prob_threshold}: must be in (0, 1]')
    elif not settings.mse:
        raise DesraSettingsError(f'--method {settings.method} compares against MSE-SR outputs: give --mse (only '
                                 '--method localizer works without)')
    if settings.semantic not in (None, ) + SEMANTIC_BACKENDS:
        raise DesraSettingsError(f'--semantic {settings.semantic}: choose from {", ".join(SEMANTIC_BACKENDS)}')
    if settings.segment_input not in SEGMENT_INPUTS:
        raise DesraSettingsError(f'--segment-input {settings.segment_input}: choose from {", ".join(SEGMENT_INPUTS)}')
    if settings.numerator not in NUMERATORS:
        raise DesraSettingsError(f'--numerator {settings.numerator}: choose from {", ".join(NUMERATORS)}')
    if not math.isfinite(settings.threshold):
        raise DesraSettingsError(f'--threshold {settings.threshold}: must be a finite number')
    if settings.min_area < 0:
        raise DesraSettingsError(f'--min-area {settings.min_area}: must be >= 0')
    if settings.min_area_ref is not None and settings.min_area_ref <= 0:
        raise DesraSettingsError(f'--min-area-ref {settings.min_area_ref}: must be > 0')
    if settings.class_table and not osp.isfile(settings.class_table):  # before the slow segmenter build
        raise DesraSettingsError(f'{settings.class_table}: class table file not found')


def run(settings: DetectSettings) -> JobResult:
    """Detect the artifacts of every GAN-SR output against its MSE-SR partner.

    Args:
        settings (DetectSettings): What to detect, how and where to write it.

    Returns:
        JobResult: Counts of this run; ``items`` holds each image's record.

    Raises:
        DesraSettingsError: For unusable settings, before any work (see :mod:`desra_basicsr.jobs.core`).
    """
    _check(settings)
    localizer = settings.method == LOCALIZER_METHOD
    if localizer and settings.mse:
        notice(f'--mse {settings.mse}: not used by --method localizer (it detects from the GAN-SR images alone)')
    inputs = {'gan': settings.gan} if localizer else {'mse': settings.mse, 'gan': settings.gan}
    check_out_dir(settings.out, inputs)
    pairs, failures = pair_inputs(inputs)

    import cv2
    import numpy as np
    import torch

    from desra_basicsr.detection.class_weights import load_class_weights
    from desra_basicsr.detection.methods import METHODS, build_detector
    from desra_basicsr.detection.morphology import MorphologyConfig
    from desra_basicsr.detection.segmenters import build_segmenter
    from desra_basicsr.errors import DesraInputError
    from desra_basicsr.image_io import read_image, stem, write_image, write_mask
    from desra_basicsr.inference import resolve_device
    from desra_basicsr.utils import atomic_write_path

    backend = settings.semantic or ('mmseg' if settings.seg_checkpoint else 'none')
    if localizer or not METHODS[settings.method].semantics:
        backend = 'none'
    elif backend == 'none':
        notice("no segmentation (--semantic none or no --seg-checkpoint): all class weights are 1, the paper's "
               "'without semantics' ablation")
    with settings_phase():
        device = resolve_device(settings.device, local_rank())
        if dist_info()[1] > 1:
            # torchrun sets OMP_NUM_THREADS=1 per rank (unless the user set it) so that N ranks do not each start a
            # thread per core; the indicator's strip pool follows OpenCV's thread count, so give it the same budget.
            cv2.setNumThreads(torch.get_num_threads())
        segmenter = build_segmenter(backend, config=settings.seg_config, checkpoint=settings.seg_checkpoint,
                                    device=str(device))
        class_weights = None
        if backend != 'none':
            class_weights = load_class_weights(settings.class_table, tuple(segmenter.class_names))
        if localizer:
            from desra_basicsr.localizer.predictor import ArtifactLocalizer, LocalizerDetector, localizer_morphology
            detector = LocalizerDetector(
                ArtifactLocalizer(settings.localizer_config, settings.localizer_checkpoint, device=str(device)),
                localizer_morphology(settings.min_area, settings.min_area_ref), settings.prob_threshold)
        else:
            detector = build_detector(
                settings.method,
                morphology=MorphologyConfig(
                    threshold=settings.threshold, min_area=settings.min_area, min_area_reference=settings.min_area_ref),
                segmenter=segmenter,
                class_weights=class_weights,
                segment_input=settings.segment_input,
                numerator=settings.numerator,
                device=str(device))
    semantics = backend != 'none'
    maps_dir = osp.join(settings.out, 'maps')
    palette = np.random.default_rng(0).integers(0, 256, (max(segmenter.num_classes, 1), 3), dtype=np.uint8)

    def outputs(name: str) -> tuple:
        paths = [osp.join(settings.out, f'{name}.png')]
        if settings.save_maps:
            paths.append(osp.join(maps_dir, f'{name}_prob.npy' if localizer else f'{name}_D.npy'))
            if semantics:
                paths += [osp.join(maps_dir, f'{name}_D_adjusted.npy'), osp.join(maps_dir, f'{name}_seg.png')]
        return tuple(paths)

    def save_npy(path: str, array: np.ndarray) -> None:
        with atomic_write_path(path) as tmp:
            np.save(tmp, array.astype(np.float32))

    def process(item: JobItem) -> dict:
        mse_path, gan_path = (None, ) * (2 - len(item.inputs)) + item.inputs
        y_mse, y_gan = None if localizer else read_image(mse_path), read_image(gan_path)
        if y_mse is not None and y_mse.shape != y_gan.shape:
            raise DesraInputError(f'{gan_path}: size {y_gan.shape[1]}x{y_gan.shape[0]} differs from its MSE-SR '
                                  f'partner {mse_path} ({y_mse.shape[1]}x{y_mse.shape[0]})')
        try:
            result = detector.detect(y_mse, y_gan)
        except ValueError as err:  # e.g. an image smaller than the method's window
            raise DesraInputError(f'{gan_path}: {err}') from err
        if settings.save_maps:
            save_npy(item.outputs[1], result.probability if localizer else result.d_map)
            if semantics:
                save_npy(item.outputs[2], result.adjusted)
                write_image(item.outputs[3], palette[result.labels % len(palette)][:, :, ::-1])
        write_mask(item.outputs[0], result.mask)
        return {
            'artifact_fraction': round(result.artifact_fraction, 6),
            'n_regions': result.n_regions,
            'height': int(y_gan.shape[0]),
            'width': int(y_gan.shape[1])
        }

    items = [JobItem(stem(paths[0]), tuple(paths), outputs(stem(paths[0]))) for paths in pairs]
    job_settings = {
        'mse': None if localizer else osp.abspath(settings.mse),
        'gan': osp.abspath(settings.gan),
        'method': settings.method,
        'semantic': backend,
        'seg_config': osp.abspath(segmenter.config_path) if semantics else None,
        'seg_checkpoint': osp.abspath(settings.seg_checkpoint) if semantics else None,
        'class_table': osp.abspath(class_weights.source) if semantics else None,
        'segment_input': settings.segment_input if semantics else None,
        'threshold': settings.threshold,
        'min_area': settings.min_area,
        'min_area_ref': settings.min_area_ref,
        'numerator': settings.numerator,
        'device': device.type,
    }
    hashed = {'seg_checkpoint': settings.seg_checkpoint, 'class_table': class_weights.source} if semantics else {}
    if localizer:
        job_settings.update(
            localizer_config=osp.abspath(settings.localizer_config),
            localizer_checkpoint=osp.abspath(settings.localizer_checkpoint),
            prob_threshold=settings.prob_threshold)
        hashed = {'localizer_config': settings.localizer_config, 'localizer_checkpoint': settings.localizer_checkpoint}
    return run_job(
        FolderJob(
            command='detect',
            out_dir=settings.out,
            input_dirs=inputs,
            settings=job_settings,
            items=items,
            process=process,
            weights=hashed,
            failures=failures),
        overwrite=settings.overwrite,
        progress=settings.progress)
