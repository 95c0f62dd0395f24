"""Calibration job: per-class weights of the semantic adjustment, measured on a data set (paper eq. 8).

For every class ``k`` of the segmenter, ``A_k`` is the ``percentile`` (85 in the paper) of the indicator ``D`` over
all pixels of that class across the MSE-SR / GAN-SR pairs, and the weight is ``1 / A_k``. Memory stays flat in the
number of images (streaming histograms, see :mod:`desra_basicsr.evaluation.calibration`). The output is a YAML table
``class name: weight`` that the detection job accepts as its class table; ``released_format`` also writes the
authors' ``name--idx`` text format (20 bins). Without a segmentation checkpoint every pixel falls in one class and
every class gets the same weight.

Example::

    from desra_basicsr.jobs.calibrate import CalibrateSettings, run
    result = run(CalibrateSettings(mse='sr/mse', gan='sr/gan', out='weights.yml', seg_checkpoint='segformer.pth'))
"""
from dataclasses import dataclass
from typing import Callable, List, Literal, Optional, Tuple

from desra_basicsr.errors import DesraSettingsError, settings_phase
from desra_basicsr.folders import check_out_file, pair_inputs
from desra_basicsr.jobs.core import local_rank
from desra_basicsr.jobs.progress import progress_bar
from desra_basicsr.settings import Settings, setting
from desra_basicsr.utils import notice

SEGMENT_IMAGES = ('gan', 'mse')
#: Most histogram bins (the memory of the histograms grows with them).
MAX_BINS = 10_000_000


@dataclass(frozen=True)
class CalibrateSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        mse (str): Folder of MSE-SR outputs.
        gan (str): Folder of GAN-SR outputs.
        out (str): Output YAML table (``.yml`` / ``.yaml``).
        seg_config (str | None): mmseg config (default: the SegFormer mit-b5 ADE20K config).
        seg_checkpoint (str | None): mmseg checkpoint; without it, no segmentation (one class).
        segment_image (str): Output segmented: ``'gan'`` (the release) or ``'mse'`` (the paper's appendix).
        device (str): Segmenter device.
        percentile (float): Percentile of D per class, in (0, 100].
        bins (int): Histogram bins over [0, 1] (at least 20).
        released_format (str | None): Also write the released ``name--idx`` table here.
        progress (bool): Show a progress bar.
    """
    mse: str = setting(kind='path')
    gan: str = setting(kind='path')
    out: str = setting(kind='path')
    seg_config: Optional[str] = setting(None, kind='path')
    seg_checkpoint: Optional[str] = setting(None, kind='path')
    segment_image: Literal[SEGMENT_IMAGES] = 'gan'
    device: str = setting('cpu', kind='device')
    percentile: float = setting(85.0, lo=0, lo_open=True, hi=100)
    bins: int = setting(10000, lo=20, hi=MAX_BINS)
    released_format: Optional[str] = setting(None, kind='path', flag='--released-format')
    progress: bool = True

    def check(self) -> None:
        """The output table is a YAML file."""
        if not self.out.lower().endswith(('.yml', '.yaml')):
            raise DesraSettingsError(f'{self.out}: the output table must be a .yml / .yaml file')


@dataclass
class CalibrateResult:
    """Result of :func:`run`.

    Attributes:
        pairs (int): Image pairs measured.
        names (tuple[str, ...]): Class names in label order.
        percentiles (list[float]): ``A_k`` per class (NaN for classes without pixels).
        weights (list[float]): ``w_k`` per class (1 for classes without pixels).
        pixels (list[int]): Pixels per class.
        unseen (list[int]): Classes without pixels.
        segmented (bool): Whether a segmenter ran (False: one class for every pixel).
        out (str): The YAML table written.
        released_format (str | None): The released-format table written, if any.
    """
    pairs: int
    names: Tuple[str, ...]
    percentiles: List[float]
    weights: List[float]
    pixels: List[int]
    unseen: List[int]
    segmented: bool
    out: str
    released_format: Optional[str] = None


def run(settings: CalibrateSettings) -> CalibrateResult:
    """Measure the class weights and write the table(s).

    Args:
        settings (CalibrateSettings): Inputs, segmenter and outputs.

    Returns:
        CalibrateResult: The measured table.

    Raises:
        DesraSettingsError: For unusable settings, before any image is read.
        DesraInputError: If an image cannot be read, or a pair differs in size.
    """
    for option, path in (('--out', settings.out), ('--released-format', settings.released_format)):
        if path:
            check_out_file(path, {'mse': settings.mse, 'gan': settings.gan}, option)
    pairs, missing = pair_inputs({'mse': settings.mse, 'gan': settings.gan})
    from desra_basicsr.errors import DesraInputError
    if missing:
        raise DesraInputError(f'{settings.gan}: {len(missing)} image(s) lack a partner in --mse / --gan: '
                              f'{", ".join(sorted(missing)[:5])}')

    from desra_basicsr.evaluation.calibration import (accumulate, weights_from_percentiles, write_released_table,
                                                      write_weights_yaml)

    names, segment = _segmentation(settings)
    try:
        hist = accumulate(
            progress_bar(settings.progress, 'calibrate', 'pair')(pairs),
            num_classes=len(names) if segment else 1,
            segment=segment,
            bins=settings.bins)
    except ValueError as err:
        raise DesraInputError(str(err)) from err
    percentiles, pixels = hist.percentile(settings.percentile), hist.pixels()
    if segment is None:
        percentiles, pixels = percentiles.repeat(len(names)), pixels.repeat(len(names))
    weights, unseen = weights_from_percentiles(percentiles)
    header = _header(settings, len(pairs), [names[k] for k in unseen])
    write_weights_yaml(settings.out, names, weights, header)
    if settings.released_format:
        write_released_table(settings.released_format, names, percentiles, header)
    return CalibrateResult(
        pairs=len(pairs),
        names=names,
        percentiles=[float(a) for a in percentiles],
        weights=[float(w) for w in weights],
        pixels=[int(n) for n in pixels],
        unseen=list(unseen),
        segmented=segment is not None,
        out=settings.out,
        released_format=settings.released_format)


def _segmentation(settings: CalibrateSettings) -> Tuple[Tuple[str, ...], Optional[Callable]]:
    """The class names and the segmentation of a pair ``(y_mse, y_gan) -> labels`` (None: one class)."""
    from desra_basicsr.detection.class_weights import ADE20K_CLASSES
    from desra_basicsr.devices import resolve_device

    device = str(resolve_device(settings.device, local_rank()))
    if not settings.seg_checkpoint:
        notice('no --seg-checkpoint: no semantic segmentation, every pixel falls in one class; all classes get the '
               'same weight')
        return ADE20K_CLASSES, None
    from desra_basicsr.detection.segmenters import build_segmenter
    with settings_phase():
        segmenter = build_segmenter('mmseg', config=settings.seg_config, checkpoint=settings.seg_checkpoint,
                                    device=device)
    use_gan = settings.segment_image == 'gan'
    return tuple(segmenter.class_names), lambda y_mse, y_gan: segmenter.segment(y_gan if use_gan else y_mse)


def _header(settings: CalibrateSettings, pairs: int, unseen: List[str]) -> List[str]:
    """The comment lines of the written tables: how the weights were measured."""
    header = [
        f'DeSRA class weights w = 1 / A, A = {settings.percentile:g}th percentile of D per class '
        f'(desra calibrate, {pairs} image pairs, --mse {settings.mse}, --gan {settings.gan}).',
        'segmentation: ' + (f'{settings.seg_config or "default config"} + {settings.seg_checkpoint}, '
                            f'{settings.segment_image}-SR segmented' if settings.seg_checkpoint else
                            'none (all pixels in one class: every class has the same weight)'),
    ]
    if unseen:
        header.append(f'{len(unseen)} class(es) had no pixel and get weight 1: ' + ', '.join(unseen))
    return header
