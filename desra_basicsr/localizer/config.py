"""The localiser's mmseg training config, built from a config shipped inside the mmsegmentation 1.2.2 wheel.

The model comes from the wheel's config (``mmseg/.mim/configs/...``, see :data:`ARCHS`) with two classes in every
head and a class-weighted cross-entropy averaged over the pixels that are not padding (``avg_non_ignore``), nothing
to download (``pretrained`` and checkpoint ``init_cfg`` cleared; ``init_checkpoint`` may initialise the weights),
plain BatchNorm (SyncBN under a distributed launch on GPUs), and test-time inference at the image's own resolution
in sliding windows of the training crop's size (mmseg's ``mode='slide'``; the window must match the crop:
DeepLabV3+'s image-pooling branch and SegFormer's attention see the whole window). Training is AdamW with a poly
learning-rate decay on the concatenated training sources (mmengine's ``ConcatDataset``), each drawn with its weight
(:class:`~desra_basicsr.localizer.sampler.WeightedSourceSampler`), with mmseg's augmentations: random crops
(optionally with ``cat_max_ratio``), horizontal flips, and optionally rescaling by a random factor (mmcv's
``RandomChoice`` of ``Resize``) and ``PhotoMetricDistortion``; one checkpoint kept. None of the
architectures needs compiled mmcv ops. The docs (``docs/localizer-fusion.md`` and
``docs/benchmarks/localizer-fusion.md``) give the reasons and measurements behind these choices.

This module imports only the standard library at import time; the values it receives are checked by
:class:`desra_basicsr.jobs.localizer_train.LocalizerTrainSettings`.
"""
import os.path as osp
from typing import Dict, Literal, NamedTuple, Optional, Sequence, Tuple

from desra_basicsr.localizer.classes import CLASSES

#: Architecture name -> config path inside the mmsegmentation wheel (under ``mmseg/.mim/configs``).
ARCHS: Dict[str, str] = {
    'deeplabv3plus-r50': 'deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    'deeplabv3plus-r18': 'deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'segformer-mit-b0': 'segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
    'fast-scnn': 'fastscnn/fast_scnn_8xb4-160k_cityscapes-512x1024.py',
}
#: The keys of :data:`ARCHS`, as a type.
Arch = Literal['deeplabv3plus-r50', 'deeplabv3plus-r18', 'segformer-mit-b0', 'fast-scnn']
DEFAULT_ARCH = 'deeplabv3plus-r18'
#: Architectures with a BatchNorm after a global pooling (DeepLabV3+'s image-pooling branch, Fast-SCNN's pyramid
#: pooling's 1x1 bin): their training batches need at least two images.
POOLED_BATCHNORM_ARCHS: Tuple[str, ...] = ('deeplabv3plus-r50', 'deeplabv3plus-r18', 'fast-scnn')

#: Names of the files ``desra localizer train`` writes in its output folder.
CONFIG_NAME = 'localizer_config.py'
CHECKPOINT_NAME = 'localizer.pth'

#: mmcv's colour read without the EXIF orientation: images as stored, as :func:`desra_basicsr.image_io.read_image`
#: reads them and the masks were made (mmcv's default ``'color'`` would turn a tagged JPEG away from its mask).
IMAGE_COLOR_TYPE = 'color_ignore_orientation'
#: Stride of the sliding-window inference, as a fraction of the window (the training crop).
TEST_STRIDE_FRACTION = 0.75
#: Iterations between two lines of mmengine's training log (fewer for shorter runs).
LOG_INTERVAL = 50


class DataSource(NamedTuple):
    """One training source of :func:`build_train_config`.

    Attributes:
        img_dir (str): Folder of images.
        mask_dir (str | None): Folder of their artifact masks (same stems); None: the images are all clean.
        weight (float): How often the source is drawn, relative to the other sources' weights.
        names (tuple[str, ...] | None): Only these stems of the folders; None: every image.
        mask_channel (int | None): Channel of colour masks that holds the mask (RGBA order); None: single-channel
            masks or colour ones with equal channels.
    """
    img_dir: str
    mask_dir: Optional[str] = None
    weight: float = 1.0
    names: Optional[Tuple[str, ...]] = None
    mask_channel: Optional[int] = None


class Augmentation(NamedTuple):
    """mmseg augmentations of the training crops beyond random crops and horizontal flips.

    Attributes:
        scales (tuple[float, ...]): Factors an image is rescaled by before cropping, one drawn per image (mmcv's
            ``RandomChoice`` of ``Resize``); ``(1.0, )``: no rescaling.
        cat_max_ratio (float): ``RandomCrop``'s largest share of one class in a crop (it retries up to 10 crops);
            1: any crop.
        photometric (bool): mmseg's ``PhotoMetricDistortion`` (brightness, contrast, saturation, hue).
        edge_crops (bool): Crops centred uniformly over the image and shifted inside it
            (:class:`~desra_basicsr.localizer.transforms.EdgeRandomCrop`), so that the image's edges are in a crop
            about half as often as its middle; False: mmseg's ``RandomCrop`` (uniform offsets, edges almost never).
    """
    scales: Tuple[float, ...] = (1.0, )
    cat_max_ratio: float = 1.0
    photometric: bool = False
    edge_crops: bool = False


def wheel_config_path(arch: str) -> str:
    """Path of an architecture's base config inside the installed mmsegmentation wheel.

    Args:
        arch (str): A key of :data:`ARCHS`.

    Returns:
        str: The config file path.

    Raises:
        ValueError: For an unknown architecture.
    """
    if arch not in ARCHS:
        raise ValueError(f'unknown localiser architecture {arch!r}; choose from {sorted(ARCHS)}')
    import mmseg
    return osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', ARCHS[arch])


def _two_class_model(arch: str, window: int, artifact_weight: float):
    """The architecture's model config: two classes with a weighted cross-entropy, offline, plain BN, inference in
    sliding ``window``-pixel windows at the image's resolution."""
    from mmengine.config import Config

    from desra_basicsr.detection.mmseg_segmenter import offline_model_cfg
    model = offline_model_cfg(Config.fromfile(wheel_config_path(arch)).model)
    for head in ('decode_head', 'auxiliary_head'):
        heads = model.get(head)
        for cfg in heads if isinstance(heads, list) else [heads]:
            if cfg is not None:
                cfg.num_classes = len(CLASSES)
                losses = cfg.loss_decode if isinstance(cfg.loss_decode, list) else [cfg.loss_decode]
                for loss in losses:
                    loss.use_sigmoid = False  # a softmax over the two classes (Fast-SCNN's config has a sigmoid)
                    loss.class_weight = [1.0, artifact_weight]
                    loss.avg_non_ignore = True  # the padding of crops smaller than the window weighs nothing
    stride = max(1, int(window * TEST_STRIDE_FRACTION))
    model.test_cfg = dict(mode='slide', crop_size=(window, window), stride=(stride, stride))
    model.data_preprocessor.size = (window, window)
    return model


def _train_pipeline(crop_size: int, augmentation: Augmentation) -> list:
    """Load the image and its label map, then mmseg's augmentations (see :class:`Augmentation`)."""
    pipeline = [dict(type='LoadImageFromFile', color_type=IMAGE_COLOR_TYPE), dict(type='LoadArtifactMask')]
    if tuple(augmentation.scales) != (1.0, ):
        choices = [[dict(type='Resize', scale_factor=float(s), keep_ratio=True)] for s in augmentation.scales]
        pipeline.append(dict(type='RandomChoice', transforms=choices))
    pipeline += [
        dict(type='EdgeRandomCrop' if augmentation.edge_crops else 'RandomCrop', crop_size=(crop_size, crop_size),
             cat_max_ratio=augmentation.cat_max_ratio),
        dict(type='RandomFlip', prob=0.5),
    ]
    if augmentation.photometric:
        pipeline.append(dict(type='PhotoMetricDistortion'))
    return pipeline + [dict(type='PackSegInputs')]


def _train_dataloader(sources: Sequence[DataSource], pipeline: list, batch_size: int, num_workers: int) -> dict:
    """The sources as one ``ConcatDataset`` of :class:`~desra_basicsr.localizer.dataset.DesraArtifactMaskDataset`,
    drawn without end, each with its weight."""
    datasets = [
        dict(type='DesraArtifactMaskDataset', img_dir=source.img_dir, mask_dir=source.mask_dir,
             names=None if source.names is None else list(source.names), mask_channel=source.mask_channel,
             pipeline=pipeline) for source in sources
    ]
    return dict(
        batch_size=batch_size,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        sampler=dict(type='WeightedSourceSampler', weights=[float(source.weight) for source in sources]),
        dataset=dict(type='ConcatDataset', datasets=datasets))


def _schedule(iters: int, lr: float, checkpoint_interval: Optional[int]) -> dict:
    """AdamW with a poly decay over ``iters`` iterations, logging, and one resumable checkpoint kept."""
    return dict(
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=iters),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01)),
        param_scheduler=[dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=iters, by_epoch=False)],
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=min(LOG_INTERVAL, iters), log_metric_by_epoch=False),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=min(checkpoint_interval or iters, iters),
                            max_keep_ckpts=1),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        log_processor=dict(by_epoch=False))


def _launch(launcher: str) -> dict:
    """Environment and distributed settings: nccl and SyncBN on GPUs, gloo and DDP without device ids on CPUs."""
    import torch
    if launcher not in ('none', 'pytorch'):
        raise ValueError(f'launcher must be none or pytorch, got {launcher!r}')
    cuda = torch.cuda.is_available()
    cfg = dict(
        env_cfg=dict(
            cudnn_benchmark=False,
            mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
            dist_cfg=dict(backend='nccl' if cuda else 'gloo')),
        launcher=launcher)
    if launcher == 'pytorch' and cuda:
        cfg['sync_bn'] = 'torch'
    elif launcher == 'pytorch':  # CPU processes: DistributedDataParallel takes no device ids
        cfg['model_wrapper_cfg'] = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)
    return cfg


def build_train_config(arch: str,
                       sources: Sequence[DataSource],
                       work_dir: str,
                       iters: int,
                       *,
                       artifact_weight: float,
                       batch_size: int = 4,
                       crop_size: int = 256,
                       lr: float = 1e-3,
                       seed: int = 0,
                       num_workers: int = 2,
                       init_checkpoint: Optional[str] = None,
                       augmentation: Augmentation = Augmentation(),
                       checkpoint_interval: Optional[int] = None,
                       launcher: str = 'none'):
    """mmengine config training a localiser on weighted sources of (image, artifact mask) pairs and clean images.

    Args:
        arch (str): A key of :data:`ARCHS`.
        sources (Sequence[DataSource]): The training sources (at least one with masks), e.g. a generator's GAN-SR
            outputs with their DeSRA-det masks, synthetic artifacts with their exact masks, clean images.
        work_dir (str): mmengine work folder (logs, intermediate checkpoints for resuming).
        iters (int): Training iterations.
        artifact_weight (float): Cross-entropy weight of the artifact class (the clean class weighs 1), e.g.
            :func:`desra_basicsr.localizer.dataset.balanced_artifact_weight` of the training masks.
        batch_size (int): Images per iteration (per process).
        crop_size (int): Side of the square random crops, and of the inference windows.
        lr (float): AdamW learning rate (decays polynomially to 0).
        seed (int): Random seed.
        num_workers (int): Data loading processes (0 loads in the main process).
        init_checkpoint (str | None): mmseg checkpoint whose weights of matching names and shapes initialise the
            model (the class layers, of another shape, are skipped). None trains from scratch.
        augmentation (Augmentation): mmseg augmentations beyond random crops and flips (default: none).
        checkpoint_interval (int | None): Iterations between the checkpoints training resumes from (default
            ``iters``).
        launcher (str): ``'none'`` or ``'pytorch'`` (one process per GPU, or CPU processes over gloo, under
            ``torch.distributed.run``; the process group must exist).

    Returns:
        mmengine.config.Config: The config (``Runner.from_cfg`` trains it).

    Raises:
        ValueError: For an unknown architecture or launcher, or no source.
    """
    from mmengine.config import Config
    if not sources:
        raise ValueError('no training source')
    cfg = dict(
        default_scope='mmseg',
        localizer=dict(arch=arch, base_config=ARCHS.get(arch), classes=list(CLASSES), artifact_weight=artifact_weight),
        model=_two_class_model(arch, crop_size, artifact_weight),
        train_dataloader=_train_dataloader(sources, _train_pipeline(crop_size, augmentation), batch_size, num_workers),
        test_pipeline=[dict(type='LoadImageFromFile', color_type=IMAGE_COLOR_TYPE), dict(type='PackSegInputs')],
        log_level='INFO',
        load_from=init_checkpoint,
        resume=False,
        randomness=dict(seed=seed),
        work_dir=work_dir,
        **_schedule(iters, lr, checkpoint_interval),
        **_launch(launcher))
    return Config(cfg)
