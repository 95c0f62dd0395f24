"""The localiser's mmseg training config, built from a config shipped inside the mmsegmentation 1.2.2 wheel.

The model comes from the wheel's config (``mmseg/.mim/configs/...``) with:

* two classes (``clean``, ``artifact``) in every head;
* no download: ``pretrained`` and every checkpoint ``init_cfg`` cleared (the models train from scratch; a user's
  mmseg checkpoint can initialise them, see :func:`build_train_config`'s ``init_checkpoint``);
* plain BatchNorm instead of SyncBN (CPU and single GPU); under a distributed launch on GPUs, mmengine converts
  BN back to SyncBN (``sync_bn='torch'``);
* test-time inference at the image's own resolution (no resize: artifacts are textures, which a resize would
  change), in sliding windows of the training crop's size (stride 3/4 of it). The window must match the crop:
  DeepLabV3+'s image-pooling branch and SegFormer's attention see the whole window, so a model trained on 192-pixel
  crops and run on 512-pixel windows sees other context statistics than it learnt from and under-predicts
  artifacts (measured in docs/benchmarks/localizer-fusion.md).
* a class-weighted cross-entropy: artifacts cover a minority of the pixels (about 16 % on the demo corpus), and an
  unweighted loss learns to under-predict them. By default the artifact class weighs the square root of the ratio
  of clean to artifact pixels in the training masks (:func:`balanced_artifact_weight`). The full ratio shifts the
  probabilities so far that clean textures pass the 0.5 threshold (measured in
  docs/benchmarks/localizer-fusion.md).

The schedule, data and hooks are the localiser's own: AdamW with a poly learning-rate decay over ``iters``
iterations, random crops and horizontal flips of (GAN-SR image, DeSRA-det mask) pairs, one checkpoint kept.

Architectures (:data:`ARCHS`): DeepLabV3+ as in Zhao's localiser (ResNet-50 or ResNet-18 backbone, output stride
8), and the lighter SegFormer mit-b0. None needs compiled mmcv ops: DeepLabV3+'s ``DepthwiseSeparableASPPHead``
and ResNetV1c are built from ``mmcv.cnn`` modules (pure PyTorch), so all three train and run with mmcv-lite.
"""
import os.path as osp
from typing import Dict, Optional, Sequence

from desra_basicsr.errors import DesraInputError

#: Labels of the localiser: 0 clean, 1 artifact.
CLASSES = ('clean', 'artifact')
PALETTE = [[0, 0, 0], [255, 0, 0]]

#: Architecture name -> config path inside the mmsegmentation wheel (under ``mmseg/.mim/configs``).
ARCHS: Dict[str, str] = {
    'deeplabv3plus-r50': 'deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    'deeplabv3plus-r18': 'deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'segformer-mit-b0': 'segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
}
DEFAULT_ARCH = 'deeplabv3plus-r18'

#: Names of the files ``desra localizer train`` writes in its output folder.
CONFIG_NAME = 'localizer_config.py'
CHECKPOINT_NAME = 'localizer.pth'

#: Stride of the sliding-window inference, as a fraction of the window (the training crop).
TEST_STRIDE_FRACTION = 0.75
#: Upper bound of the default artifact-class weight (:func:`balanced_artifact_weight`).
MAX_ARTIFACT_WEIGHT = 10.0


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


def balanced_artifact_weight(mask_paths: Sequence[str], clean_pixels: int = 0) -> float:
    """Cross-entropy weight of the artifact class that softens its imbalance against the clean class.

    The square root of the ratio of clean to artifact pixels over all masks, clipped to
    ``[1, MAX_ARTIFACT_WEIGHT]`` (1 when the masks hold no artifact or more artifact than clean pixels).

    Args:
        mask_paths (Sequence[str]): Training masks (0 clean, nonzero artifact).
        clean_pixels (int): Pixels of the training images without a mask (all clean).

    Returns:
        float: The weight, rounded to 3 decimals.
    """
    import cv2
    import numpy as np
    artifact, total = 0, clean_pixels
    for path in mask_paths:
        mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        artifact += int(np.count_nonzero(mask))
        total += mask.size
    if artifact == 0:
        return 1.0
    return round(float(np.clip(np.sqrt((total - artifact) / artifact), 1.0, MAX_ARTIFACT_WEIGHT)), 3)


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
    return model


def build_train_config(arch: str,
                       img_dir: str,
                       mask_dir: str,
                       work_dir: str,
                       iters: int,
                       batch_size: int = 4,
                       crop_size: int = 256,
                       lr: float = 1e-3,
                       seed: int = 0,
                       num_workers: int = 2,
                       init_checkpoint: Optional[str] = None,
                       artifact_weight: Optional[float] = None,
                       clean_dir: Optional[str] = None,
                       checkpoint_interval: Optional[int] = None,
                       launcher: str = 'none'):
    """mmengine config training a localiser on (GAN-SR image, DeSRA-det mask) pairs.

    Args:
        arch (str): A key of :data:`ARCHS`.
        img_dir (str): Folder of GAN-SR images.
        mask_dir (str): Folder of DeSRA-det masks (0/255, same stems and sizes).
        work_dir (str): mmengine work folder (logs, intermediate checkpoints for resuming).
        iters (int): Training iterations.
        batch_size (int): Images per iteration (per process).
        crop_size (int): Side of the square random crops.
        lr (float): AdamW learning rate (decays polynomially to 0).
        seed (int): Random seed.
        num_workers (int): Data loading processes (0 loads in the main process).
        init_checkpoint (str | None): mmseg checkpoint whose weights of matching names and shapes initialise the
            model (e.g. the architecture's ADE20K or Cityscapes checkpoint from the mmseg model zoo; the class
            layers, of another shape, are skipped). None trains from scratch.
        artifact_weight (float | None): Cross-entropy weight of the artifact class (the clean class weighs 1).
            None: :func:`balanced_artifact_weight` of the training masks (and clean images).
        clean_dir (str | None): Folder of artifact-free images trained on as all clean (e.g. the DeSRA pseudo-GT
            of the GAN-SR images; see :mod:`desra_basicsr.localizer.dataset`).
        checkpoint_interval (int | None): Iterations between the checkpoints training resumes from (default
            ``iters``).
        launcher (str): ``'none'`` or ``'pytorch'`` (one process per GPU, or CPU processes over gloo, under
            ``torch.distributed.run``; the process group must exist, see
            :func:`desra_basicsr.jobs.localizer_train.init_process_group`).

    Returns:
        mmengine.config.Config: The config (``Runner.from_cfg`` trains it).

    Raises:
        ValueError: For unusable values.
        DesraInputError: If ``init_checkpoint`` does not exist, or (when the artifact weight is computed) unusable
            training data (:func:`desra_basicsr.localizer.dataset.list_artifact_pairs`).
    """
    import torch
    from mmengine.config import Config
    wheel_config_path(arch)  # unknown architectures first
    if iters < 1:
        raise ValueError(f'--iters must be >= 1, got {iters}')
    if crop_size < 32:
        raise ValueError(f'--crop-size must be >= 32, got {crop_size}')
    min_batch = 2 if arch.startswith('deeplabv3plus') else 1
    if batch_size < min_batch:
        raise ValueError(f'--batch-size must be >= {min_batch} for {arch} (BatchNorm of its image-pooling branch '
                         f'needs two samples), got {batch_size}')
    if lr <= 0:
        raise ValueError(f'--lr must be > 0, got {lr}')
    if launcher not in ('none', 'pytorch'):
        raise ValueError(f'launcher must be none or pytorch, got {launcher!r}')
    if artifact_weight is not None and artifact_weight <= 0:
        raise ValueError(f'--artifact-weight must be > 0, got {artifact_weight}')
    if init_checkpoint and not osp.isfile(init_checkpoint):
        raise DesraInputError(f'{init_checkpoint}: --init-checkpoint not found')
    if artifact_weight is None:
        import cv2

        from desra_basicsr.localizer.dataset import list_artifact_pairs, list_clean_images
        shapes = [cv2.imread(path, cv2.IMREAD_GRAYSCALE).shape for path in list_clean_images(clean_dir)] \
            if clean_dir else []
        clean_pixels = sum(height * width for height, width in shapes)
        artifact_weight = balanced_artifact_weight([mask for _, mask in list_artifact_pairs(img_dir, mask_dir)],
                                                   clean_pixels)
    model = _two_class_model(arch, crop_size, artifact_weight)
    model.data_preprocessor.size = (crop_size, crop_size)
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadArtifactMask'),
        dict(type='RandomCrop', crop_size=(crop_size, crop_size)),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackSegInputs'),
    ]
    interval = min(checkpoint_interval or iters, iters)
    cuda = torch.cuda.is_available()
    cfg = dict(
        default_scope='mmseg',
        localizer=dict(arch=arch, base_config=ARCHS[arch], classes=list(CLASSES), artifact_weight=artifact_weight),
        model=model,
        train_dataloader=dict(
            batch_size=batch_size,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=dict(
                type='DesraArtifactMaskDataset',
                img_dir=img_dir,
                mask_dir=mask_dir,
                clean_dir=clean_dir,
                pipeline=train_pipeline)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=iters),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01)),
        param_scheduler=[dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=iters, by_epoch=False)],
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=min(50, iters), log_metric_by_epoch=False),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=interval, max_keep_ckpts=1),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        test_pipeline=[dict(type='LoadImageFromFile'), dict(type='PackSegInputs')],
        env_cfg=dict(
            cudnn_benchmark=False,
            mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
            dist_cfg=dict(backend='nccl' if cuda else 'gloo')),
        log_processor=dict(by_epoch=False),
        log_level='INFO',
        load_from=init_checkpoint,
        resume=False,
        randomness=dict(seed=seed),
        launcher=launcher,
        work_dir=work_dir)
    if launcher == 'pytorch' and cuda:
        cfg['sync_bn'] = 'torch'
    elif launcher == 'pytorch':  # CPU processes: DistributedDataParallel takes no device ids
        cfg['model_wrapper_cfg'] = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)
    return Config(cfg)
