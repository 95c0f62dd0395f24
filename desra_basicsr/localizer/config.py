"""The localiser's mmseg training config, built from a config shipped inside the mmsegmentation 1.2.2 wheel.

The model comes from the wheel's config (``mmseg/.mim/configs/...``, see :data:`ARCHS`) with two classes in every
head and a class-weighted cross-entropy, nothing to download (``pretrained`` and checkpoint ``init_cfg`` cleared;
``init_checkpoint`` may initialise the weights), plain BatchNorm (SyncBN under a distributed launch on GPUs), and
test-time inference at the image's own resolution in sliding windows of the training crop's size (the window must
match the crop: DeepLabV3+'s image-pooling branch and SegFormer's attention see the whole window). Training is
AdamW with a poly learning-rate decay, random crops and horizontal flips of (GAN-SR image, DeSRA-det mask) pairs,
one checkpoint kept. None of the architectures needs compiled mmcv ops. The docs (``docs/localizer-fusion.md`` and
``docs/benchmarks/localizer-fusion.md``) give the reasons and measurements behind these choices.

This module imports only the standard library at import time; the values it receives are checked by
:class:`desra_basicsr.jobs.localizer_train.LocalizerTrainSettings`.
"""
import os.path as osp
from typing import Dict, Literal, Optional

from desra_basicsr.localizer.classes import CLASSES

#: Architecture name -> config path inside the mmsegmentation wheel (under ``mmseg/.mim/configs``).
ARCHS: Dict[str, str] = {
    'deeplabv3plus-r50': 'deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    'deeplabv3plus-r18': 'deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'segformer-mit-b0': 'segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
}
#: The keys of :data:`ARCHS`, as a type.
Arch = Literal['deeplabv3plus-r50', 'deeplabv3plus-r18', 'segformer-mit-b0']
DEFAULT_ARCH = 'deeplabv3plus-r18'

#: Names of the files ``desra localizer train`` writes in its output folder.
CONFIG_NAME = 'localizer_config.py'
CHECKPOINT_NAME = 'localizer.pth'

#: Stride of the sliding-window inference, as a fraction of the window (the training crop).
TEST_STRIDE_FRACTION = 0.75
#: Iterations between two lines of mmengine's training log (fewer for shorter runs).
LOG_INTERVAL = 50


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
                    loss.class_weight = [1.0, artifact_weight]
    stride = max(1, int(window * TEST_STRIDE_FRACTION))
    model.test_cfg = dict(mode='slide', crop_size=(window, window), stride=(stride, stride))
    model.data_preprocessor.size = (window, window)
    return model


def _train_dataloader(img_dir: str, mask_dir: str, clean_dir: Optional[str], crop_size: int, batch_size: int,
                      num_workers: int) -> dict:
    """Random crops and horizontal flips of the pairs of :class:`~desra_basicsr.localizer.dataset.
    DesraArtifactMaskDataset`, drawn without end."""
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadArtifactMask'),
        dict(type='RandomCrop', crop_size=(crop_size, crop_size)),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackSegInputs'),
    ]
    return dict(
        batch_size=batch_size,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        dataset=dict(
            type='DesraArtifactMaskDataset', img_dir=img_dir, mask_dir=mask_dir, clean_dir=clean_dir,
            pipeline=pipeline))


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
                       img_dir: str,
                       mask_dir: str,
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
                       clean_dir: Optional[str] = None,
                       checkpoint_interval: Optional[int] = None,
                       launcher: str = 'none'):
    """mmengine config training a localiser on (GAN-SR image, DeSRA-det mask) pairs.

    Args:
        arch (str): A key of :data:`ARCHS`.
        img_dir (str): Folder of GAN-SR images.
        mask_dir (str): Folder of DeSRA-det masks (same stems and sizes).
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
        clean_dir (str | None): Folder of artifact-free images trained on as all clean (see
            :mod:`desra_basicsr.localizer.dataset`).
        checkpoint_interval (int | None): Iterations between the checkpoints training resumes from (default
            ``iters``).
        launcher (str): ``'none'`` or ``'pytorch'`` (one process per GPU, or CPU processes over gloo, under
            ``torch.distributed.run``; the process group must exist).

    Returns:
        mmengine.config.Config: The config (``Runner.from_cfg`` trains it).

    Raises:
        ValueError: For an unknown architecture or launcher.
    """
    from mmengine.config import Config
    cfg = dict(
        default_scope='mmseg',
        localizer=dict(arch=arch, base_config=ARCHS.get(arch), classes=list(CLASSES), artifact_weight=artifact_weight),
        model=_two_class_model(arch, crop_size, artifact_weight),
        train_dataloader=_train_dataloader(img_dir, mask_dir, clean_dir, crop_size, batch_size, num_workers),
        test_pipeline=[dict(type='LoadImageFromFile'), dict(type='PackSegInputs')],
        log_level='INFO',
        load_from=init_checkpoint,
        resume=False,
        randomness=dict(seed=seed),
        work_dir=work_dir,
        **_schedule(iters, lr, checkpoint_interval),
        **_launch(launcher))
    return Config(cfg)
