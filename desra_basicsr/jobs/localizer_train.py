"""Localiser training job: train the artifact localiser on weighted sources of images with artifact masks.

The sources (:mod:`desra_basicsr.jobs.localizer_sources`) are synthetic-artifact folders (exact masks), generators'
outputs with their DeSRA-det masks, and clean images trained on as all clean, each drawn with its weight;
``gan`` / ``masks`` and ``clean`` are the short form of one generator source and one clean source.

One job item, ``localizer``, whose inputs are every image and mask and whose outputs are ``OUT/localizer_config.py``
and ``OUT/localizer.pth`` (:mod:`desra_basicsr.localizer.training`), so the job core
(:mod:`desra_basicsr.jobs.core`) gives training what it gives the folder jobs: a finished run is kept, other
settings (a source, its weight included) or changed inputs are refused unless ``overwrite`` (which also discards the
intermediate checkpoints), and ``OUT/summary.json`` records the settings with the sources, the training time and the
final loss. An interrupted training run resumes from its latest checkpoint in ``OUT/work_dir``
(``checkpoint_interval``). Every setting, the training data and the init checkpoint are checked before mmengine
starts.

Under ``python -m torch.distributed.run`` the item is collective: every rank trains (mmengine's distributed launch,
``launcher='pytorch'``: DistributedDataParallel, SyncBN on GPUs, each rank ``batch_size`` images per iteration),
over nccl on one GPU per rank or over gloo on CPU processes, and rank 0 writes the files. One torchrun process
(``--nproc_per_node=1``) takes the same distributed launch, as mmsegmentation's ``tools/dist_train.sh`` does.

Example::

    from desra_basicsr.jobs.localizer_sources import TrainingSource
    from desra_basicsr.jobs.localizer_train import LocalizerTrainSettings, run
    result = run(LocalizerTrainSettings(gan='sr/gan', masks='masks', out='localizer', iters=2000))
    result = run(LocalizerTrainSettings(out='zoo_localizer', sources=(
        TrainingSource('synthetic', 'zoo/synth', weight=2.0),
        TrainingSource('generator', 'zoo/gan_a/sr', 'zoo/gan_a/masks'),
        TrainingSource('clean', 'zoo/hr', weight=0.5))))
    config, checkpoint = result.items['localizer']['config'], result.items['localizer']['checkpoint']
"""
import os.path as osp
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, Literal, Optional, Sequence, Tuple

from desra_basicsr.constants import MASK_CHANNEL_CHOICES
from desra_basicsr.errors import DesraInputError, DesraSettingsError, settings_phase
from desra_basicsr.folders import check_out_dir
from desra_basicsr.jobs.core import (FolderJob, JobItem, JobResult, discard_training_state, local_rank, run_job,
                                     under_torchrun)
from desra_basicsr.jobs.localizer_sources import SourceData, TrainingSource, source_roles
from desra_basicsr.localizer.config import DEFAULT_ARCH, POOLED_BATCHNORM_ARCHS, Arch
from desra_basicsr.settings import Settings, check_number, setting

#: Name of the job's single item in ``summary.json``.
ITEM = 'localizer'

#: Smallest crop side: DeepLabV3+ and SegFormer downsample by 32 before their heads.
MIN_CROP_SIZE = 32
#: Largest crop side: that of the mmseg configs the architectures come from (Cityscapes 512x1024). Memory grows
#: fast with the crop: SegFormer's first-stage attention holds ``(side/4)^2 * (side/32)^2`` floats per image and
#: head (268 MB at 1024, 4.3 GB at 2048, 2.4 TB at 10000).
MAX_CROP_SIZE = 1024
#: Largest batch per process: far above the 2-16 images per GPU of mmseg's configs, so that a mistyped value is
#: refused before mmengine allocates it.
MAX_BATCH_SIZE = 256
#: Largest iteration count (and checkpoint interval): six times the longest schedule of mmseg's configs (160k).
MAX_ITERS = 1_000_000
#: Most data-loading processes per training process.
MAX_NUM_WORKERS = 64
#: Largest explicit artifact-class weight: the square root of the clean-to-artifact ratio of masks with one
#: artifact pixel in 10^4.
MAX_ARTIFACT_WEIGHT = 100.0
#: Largest seed (numpy's seeds, which mmengine's ``set_random_seed`` passes on, are 32-bit).
MAX_SEED = 2**32 - 1
#: Range of the rescaling factors of ``scales`` (mmseg's configs rescale by 0.5-2), and their largest number.
MIN_SCALE, MAX_SCALE, MAX_SCALES = 0.25, 4.0, 16
#: Top-level modules of an mmseg segmentor (``EncoderDecoder``): an init checkpoint holds weights under them.
SEGMENTOR_PARTS = ('backbone', 'neck', 'decode_head', 'auxiliary_head')


@dataclass(frozen=True)
class LocalizerTrainSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        out (str): Output folder.
        gan (str | None): Folder of GAN-SR images: with ``masks``, one ``generator`` source of weight 1.
        masks (str | None): Folder of DeSRA-det masks of ``gan`` (``desra detect`` output; same stems and sizes).
        clean (str | None): Folder of artifact-free images trained on as all clean, e.g. the DeSRA pseudo-GT of
            ``gan`` (``desra pseudo-gt``): one ``clean`` source of weight 1.
        sources (tuple[TrainingSource, ...]): Further sources (:mod:`desra_basicsr.jobs.localizer_sources`); with
            ``gan`` / ``masks`` and ``clean`` at least one source with masks.
        arch (str): A key of :data:`desra_basicsr.localizer.config.ARCHS`.
        iters (int): Training iterations, in [1, :data:`MAX_ITERS`].
        batch_size (int): Images per iteration (per process), in [1, :data:`MAX_BATCH_SIZE`]; DeepLabV3+ and
            Fast-SCNN need 2 (:data:`~desra_basicsr.localizer.config.POOLED_BATCHNORM_ARCHS`).
        crop_size (int): Side of the random training crops and of the inference windows, in
            [:data:`MIN_CROP_SIZE`, :data:`MAX_CROP_SIZE`].
        lr (float): AdamW learning rate, in (0, 1].
        seed (int): Random seed, in [0, 2^32 - 1].
        num_workers (int): Data loading processes (0: the main process), at most :data:`MAX_NUM_WORKERS`.
        init_checkpoint (str | None): mmseg checkpoint initialising the weights of matching names and shapes.
        artifact_weight (float | None): Cross-entropy weight of the artifact class (clean: 1), in
            (0, :data:`MAX_ARTIFACT_WEIGHT`]; None balances the classes of the pixels training draws
            (:func:`desra_basicsr.jobs.localizer_sources.training_artifact_weight`).
        scales (tuple[float, ...]): Factors an image is rescaled by before cropping, one drawn per image, each in
            [:data:`MIN_SCALE`, :data:`MAX_SCALE`]; ``(1.0, )``: none.
        cat_max_ratio (float): Largest share of one class in a random crop (mmseg's ``RandomCrop`` retries up to 10
            crops), in (0, 1]; 1: any crop.
        photometric (bool): mmseg's ``PhotoMetricDistortion`` of the crops.
        edge_crops (bool): Crops centred uniformly over the image, which hold its edges about half as often as its
            middle (:class:`~desra_basicsr.localizer.transforms.EdgeRandomCrop`); False: mmseg's ``RandomCrop``.
        mask_channel (int | None): Channel of colour masks that holds the mask (RGBA order, see
            :func:`desra_basicsr.image_io.decode_mask`), for the generators' masks; None: single-channel masks or
            colour ones with equal channels.
        checkpoint_interval (int | None): Iterations between resumable checkpoints (None: only at the end).
        overwrite (bool): Train again from scratch even when an earlier run with other settings wrote ``out``.
        progress (bool): Show a progress bar.
    """
    out: str = setting(kind='path')
    gan: Optional[str] = setting(None, kind='path')
    masks: Optional[str] = setting(None, kind='path')
    clean: Optional[str] = setting(None, kind='path')
    sources: Tuple[TrainingSource, ...] = ()
    arch: Arch = DEFAULT_ARCH
    iters: int = setting(2000, lo=1, hi=MAX_ITERS)
    batch_size: int = setting(4, lo=1, hi=MAX_BATCH_SIZE)
    crop_size: int = setting(256, lo=MIN_CROP_SIZE, hi=MAX_CROP_SIZE)
    lr: float = setting(1e-3, lo=0, lo_open=True, hi=1)
    seed: int = setting(0, lo=0, hi=MAX_SEED)
    num_workers: int = setting(2, lo=0, hi=MAX_NUM_WORKERS)
    init_checkpoint: Optional[str] = setting(None, kind='path')
    artifact_weight: Optional[float] = setting(None, lo=0, lo_open=True, hi=MAX_ARTIFACT_WEIGHT)
    scales: Tuple[float, ...] = (1.0, )
    cat_max_ratio: float = setting(1.0, lo=0, lo_open=True, hi=1)
    photometric: bool = False
    edge_crops: bool = False
    mask_channel: Optional[Literal[MASK_CHANNEL_CHOICES]] = None
    checkpoint_interval: Optional[int] = setting(500, lo=1, hi=MAX_ITERS)
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        """Checks across fields: the sources, the rescaling factors, DeepLabV3+'s batch.

        Raises:
            DesraSettingsError: If ``gan`` comes without ``masks`` or the reverse, a source is not a
                :class:`TrainingSource`, no source has masks, a rescaling factor is out of range, or ``batch_size``
                is 1 for a DeepLabV3+ architecture.
        """
        if (self.gan is None) != (self.masks is None):
            raise DesraSettingsError('--gan and --masks go together (a generator\'s outputs and their DeSRA-det '
                                     'masks); or give the generator as --source generator IMAGES MASKS')
        sources = self.sources if isinstance(self.sources, (list, tuple)) else [self.sources]
        for source in sources:
            if not isinstance(source, TrainingSource):
                raise DesraSettingsError(f'--source {source!r}: not a training source (desra_basicsr.jobs.'
                                         'localizer_sources.TrainingSource)')
        object.__setattr__(self, 'sources', tuple(sources))
        if all(source.kind == 'clean' for source in self.training_sources()):
            raise DesraSettingsError('no training source with artifact masks: give --gan and --masks, or --source '
                                     'synthetic DIR or --source generator IMAGES MASKS')
        scales = self.scales if isinstance(self.scales, (list, tuple)) else [self.scales]
        if not 1 <= len(scales) <= MAX_SCALES or not all(isinstance(s, (int, float)) for s in scales):
            raise DesraSettingsError(f'--scales {" ".join(map(str, scales))}: give 1 to {MAX_SCALES} numbers')
        for scale in scales:
            check_number('--scales', scale, {'lo': MIN_SCALE, 'hi': MAX_SCALE, 'lo_open': False, 'hi_open': False})
        object.__setattr__(self, 'scales', tuple(float(s) for s in scales))
        if self.arch in POOLED_BATCHNORM_ARCHS and self.batch_size < 2:
            raise DesraSettingsError(f'--batch-size {self.batch_size}: must be >= 2 for {self.arch} (the BatchNorm '
                                     'after its global pooling needs two samples)')

    def training_sources(self) -> Tuple[TrainingSource, ...]:
        """Every source: ``gan`` / ``masks`` and ``clean`` (weight 1 each) first, then ``sources``.

        Returns:
            tuple[TrainingSource, ...]: The sources.
        """
        short = []
        if self.gan is not None:
            short.append(TrainingSource('generator', self.gan, self.masks, legacy=True))
        if self.clean is not None:
            short.append(TrainingSource('clean', self.clean, legacy=True))
        return tuple(short) + self.sources

    def input_dirs(self) -> Dict[str, str]:
        """The input folders by role (the output folder may be none of them, nor inside one).

        Returns:
            dict[str, str]: ``gan``, ``masks``, ``clean`` when given, and the folders of each source.
        """
        inputs = {role: getattr(self, role) for role in ('gan', 'masks', 'clean') if getattr(self, role)}
        return dict(inputs, **source_roles(self.sources))


@contextmanager
def training_process_group(distributed: bool) -> Iterator[None]:
    """torchrun's default process group for a distributed training, for the length of the block.

    nccl with this rank's GPU (``LOCAL_RANK``) when CUDA is available, else gloo (CPU processes). mmengine's
    ``init_dist`` would select a CUDA device even on a CPU machine, so the group is made here; mmengine's ``Runner``
    and the job core then use it. A group that exists already (the caller's) is used and left as it is; one made
    here is destroyed when the block ends.

    Args:
        distributed (bool): Whether torchrun started the process (False: nothing to do).

    Yields:
        None
    """
    import torch
    import torch.distributed as dist

    from desra_basicsr.jobs.core import DIST_TIMEOUT
    created = distributed and not dist.is_initialized()
    if created:
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank())
            dist.init_process_group(backend='nccl', timeout=DIST_TIMEOUT)
        else:
            dist.init_process_group(backend='gloo', timeout=DIST_TIMEOUT)
    try:
        yield
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def check_init_checkpoint(path: str) -> None:
    """Refuse an init checkpoint that is not an mmseg segmentation model, reading it safely (``weights_only``).

    Args:
        path (str): The checkpoint file.

    Raises:
        DesraSettingsError: If the file is missing, empty, corrupt or truncated, crafted (objects other than tensors
            and plain containers), or holds no weights under the modules of an mmseg segmentor.
    """
    from desra_basicsr import compat
    from desra_basicsr.checkpoints import KEYS_SHOWN, read_checkpoint, select_state_dict
    compat.apply('torch_load_numpy_globals')  # numpy metadata of OpenMMLab checkpoints, as mmengine loads them
    try:
        state, _ = select_state_dict(read_checkpoint(path), path, 'state_dict')
        if not any(key.split('.', 1)[0] in SEGMENTOR_PARTS for key in state):
            keys = ', '.join(list(state)[:KEYS_SHOWN])
            raise DesraInputError(f'{path}: not an mmseg segmentation checkpoint (no weights under '
                                  f'{", ".join(SEGMENTOR_PARTS)}; its keys: {keys}, ...)')
    except DesraInputError as err:
        raise DesraSettingsError(f'--init-checkpoint {err}') from err


def _train_config(settings: LocalizerTrainSettings, data: Sequence[SourceData], artifact_weight: float,
                  distributed: bool):
    """The mmengine config of :func:`desra_basicsr.localizer.config.build_train_config` for the settings."""
    from desra_basicsr.localizer.config import Augmentation, DataSource, build_train_config
    return build_train_config(
        settings.arch,
        [DataSource(part.img_dir, part.mask_dir, part.source.weight, part.names, part.mask_channel) for part in data],
        osp.join(settings.out, 'work_dir'),
        settings.iters,
        artifact_weight=artifact_weight,
        batch_size=settings.batch_size,
        crop_size=settings.crop_size,
        lr=settings.lr,
        seed=settings.seed,
        num_workers=settings.num_workers,
        init_checkpoint=settings.init_checkpoint,
        augmentation=Augmentation(settings.scales, settings.cat_max_ratio, settings.photometric, settings.edge_crops),
        checkpoint_interval=settings.checkpoint_interval,
        launcher='pytorch' if distributed else 'none')


def _job_settings(settings: LocalizerTrainSettings, artifact_weight: float) -> dict:
    """The settings recorded in ``summary.json`` (a later run with others is refused unless ``overwrite``)."""
    recorded = ('arch', 'iters', 'batch_size', 'crop_size', 'lr', 'seed', 'init_checkpoint', 'cat_max_ratio',
                'photometric', 'edge_crops')
    # mask_channel is recorded only when given: without it the folder is that of a version without the option
    recorded += ('mask_channel', ) if settings.mask_channel is not None else ()
    return dict({name: getattr(settings, name) for name in recorded},
                sources=[source.record() for source in settings.training_sources()],
                scales=list(settings.scales),
                artifact_weight=artifact_weight)


def run(settings: LocalizerTrainSettings) -> JobResult:
    """Train the localiser (see the module docstring).

    Args:
        settings (LocalizerTrainSettings): Data, model and schedule.

    Returns:
        JobResult: ``items['localizer']`` holds ``config``, ``checkpoint``, ``images``, ``clean_images``,
        ``source_images`` (per source, in the order of :meth:`LocalizerTrainSettings.training_sources`), ``iters``,
        ``seconds``, ``resumed_from`` and ``final_loss``.

    Raises:
        DesraSettingsError: Unusable settings, training data or init checkpoint, before training starts.
    """
    from desra_basicsr.jobs.localizer_sources import input_files, load_source, training_artifact_weight
    from desra_basicsr.localizer.config import CHECKPOINT_NAME, CONFIG_NAME

    distributed = under_torchrun()
    check_out_dir(settings.out, settings.input_dirs())
    if settings.init_checkpoint:
        check_init_checkpoint(settings.init_checkpoint)
    with settings_phase():
        data = [load_source(source, settings.mask_channel) for source in settings.training_sources()]
        artifact_weight = settings.artifact_weight
        if artifact_weight is None:
            artifact_weight = training_artifact_weight(data)
        cfg = _train_config(settings, data, artifact_weight, distributed)

    def process(item: JobItem) -> dict:
        from desra_basicsr.localizer.training import train_localizer
        if settings.overwrite:
            discard_training_state(osp.join(settings.out, 'work_dir'))
        info = train_localizer(cfg, settings.out)
        return {k: osp.abspath(v) if k in ('config', 'checkpoint') else v for k, v in info.items()}

    outputs = (osp.join(settings.out, CONFIG_NAME), osp.join(settings.out, CHECKPOINT_NAME))
    with training_process_group(distributed):
        return run_job(
            FolderJob(
                command='localizer-train',
                out_dir=settings.out,
                input_dirs=settings.input_dirs(),
                settings=_job_settings(settings, artifact_weight),
                items=[JobItem(ITEM, tuple(input_files(data)), outputs)],
                process=process,
                weights={'init_checkpoint': settings.init_checkpoint} if settings.init_checkpoint else {},
                desc='localizer train',
                collective=True),
            overwrite=settings.overwrite,
            progress=settings.progress)
