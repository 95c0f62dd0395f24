"""Localiser training job: train the artifact localiser on GAN-SR images and their DeSRA-det masks.

One job item, ``localizer``, whose inputs are every image and mask and whose outputs are ``OUT/localizer_config.py``
and ``OUT/localizer.pth`` (:mod:`desra_basicsr.localizer.training`), so the job core
(:mod:`desra_basicsr.jobs.core`) gives training what it gives the folder jobs: a finished run is kept, other
settings or changed inputs are refused unless ``overwrite`` (which also discards the intermediate checkpoints),
and ``OUT/summary.json`` records the settings, the training time and the final loss. An interrupted training run
resumes from its latest checkpoint in ``OUT/work_dir`` (``checkpoint_interval``).

Under ``python -m torch.distributed.run`` the item is collective: every rank trains (mmengine's distributed launch,
``launcher='pytorch'``: DistributedDataParallel, SyncBN on GPUs, each rank ``batch_size`` images per iteration),
over nccl on one GPU per rank or over gloo on CPU processes, and rank 0 writes the files.

Example::

    from desra_basicsr.jobs.localizer_train import LocalizerTrainSettings, run
    result = run(LocalizerTrainSettings(gan='sr/gan', masks='masks', out='localizer', iters=2000))
    config, checkpoint = result.items['localizer']['config'], result.items['localizer']['checkpoint']
"""
import os.path as osp
import shutil
from dataclasses import dataclass
from typing import Optional

from desra_basicsr.errors import settings_phase
from desra_basicsr.folders import check_out_dir, pair_inputs
from desra_basicsr.jobs.core import FolderJob, JobItem, JobResult, dist_info, local_rank, run_job
from desra_basicsr.localizer.config import DEFAULT_ARCH

#: Name of the job's single item in ``summary.json``.
ITEM = 'localizer'


@dataclass
class LocalizerTrainSettings:
    """Settings of :func:`run`.

    Attributes:
        gan (str): Folder of GAN-SR images.
        masks (str): Folder of DeSRA-det masks (``desra detect`` output; same stems and sizes).
        out (str): Output folder.
        clean (str | None): Folder of artifact-free images trained on as all clean, e.g. the DeSRA pseudo-GT of
            ``gan`` (``desra pseudo-gt``).
        arch (str): A key of :data:`desra_basicsr.localizer.config.ARCHS`.
        iters (int): Training iterations.
        batch_size (int): Images per iteration.
        crop_size (int): Side of the random training crops.
        lr (float): AdamW learning rate.
        seed (int): Random seed.
        num_workers (int): Data loading processes.
        init_checkpoint (str | None): mmseg checkpoint initialising the weights of matching names and shapes.
        artifact_weight (float | None): Cross-entropy weight of the artifact class (clean: 1); None balances the
            classes (:func:`desra_basicsr.localizer.config.balanced_artifact_weight`).
        checkpoint_interval (int | None): Iterations between resumable checkpoints (default: only at the end).
        overwrite (bool): Train again from scratch even when an earlier run with other settings wrote ``out``.
        progress (bool): Show a progress bar.
    """
    gan: str
    masks: str
    out: str
    clean: Optional[str] = None
    arch: str = DEFAULT_ARCH
    iters: int = 2000
    batch_size: int = 4
    crop_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    num_workers: int = 2
    init_checkpoint: Optional[str] = None
    artifact_weight: Optional[float] = None
    checkpoint_interval: Optional[int] = 500
    overwrite: bool = False
    progress: bool = True


def init_process_group() -> None:
    """Create torchrun's default process group for a distributed localiser training, unless one exists.

    nccl with this rank's GPU (``LOCAL_RANK``) when CUDA is available, else gloo (CPU processes). mmengine's
    ``init_dist`` would select a CUDA device even on a CPU machine, so the group is made here; mmengine's ``Runner``
    and the job core then use it.
    """
    import torch
    import torch.distributed as dist

    from desra_basicsr.jobs.core import DIST_TIMEOUT
    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
        dist.init_process_group(backend='nccl', timeout=DIST_TIMEOUT)
    else:
        dist.init_process_group(backend='gloo', timeout=DIST_TIMEOUT)


def run(settings: LocalizerTrainSettings) -> JobResult:
    """Train the localiser (see the module docstring).

    Args:
        settings (LocalizerTrainSettings): Data, model and schedule.

    Returns:
        JobResult: ``items['localizer']`` holds ``config``, ``checkpoint``, ``images``, ``iters``, ``seconds``,
        ``resumed_from`` and ``final_loss``.

    Raises:
        DesraSettingsError: Unusable settings or training data, before training starts.
    """
    from desra_basicsr.errors import DesraSettingsError
    from desra_basicsr.localizer.config import ARCHS, CHECKPOINT_NAME, CONFIG_NAME, build_train_config

    distributed = dist_info()[1] > 1
    if settings.arch not in ARCHS:
        raise DesraSettingsError(f'--arch {settings.arch}: unknown; choose from {", ".join(sorted(ARCHS))}')
    inputs = {'gan': settings.gan, 'masks': settings.masks}
    if settings.clean:
        inputs['clean'] = settings.clean
    check_out_dir(settings.out, inputs)
    pair_inputs({'gan': settings.gan, 'masks': settings.masks})  # missing or empty folders
    with settings_phase():
        cfg = build_train_config(
            settings.arch,
            osp.abspath(settings.gan),
            osp.abspath(settings.masks),
            osp.join(settings.out, 'work_dir'),
            settings.iters,
            batch_size=settings.batch_size,
            crop_size=settings.crop_size,
            lr=settings.lr,
            seed=settings.seed,
            num_workers=settings.num_workers,
            init_checkpoint=settings.init_checkpoint,
            artifact_weight=settings.artifact_weight,
            clean_dir=osp.abspath(settings.clean) if settings.clean else None,
            checkpoint_interval=settings.checkpoint_interval,
            launcher='pytorch' if distributed else 'none')
        from desra_basicsr.localizer.dataset import list_artifact_pairs, list_clean_images
        pairs = list_artifact_pairs(settings.gan, settings.masks)  # every pair complete, sizes, 0/255 masks
        clean = list_clean_images(settings.clean) if settings.clean else []
    if distributed:
        init_process_group()
    if settings.overwrite and dist_info()[0] == 0:
        shutil.rmtree(osp.join(settings.out, 'work_dir'), ignore_errors=True)

    def process(item: JobItem) -> dict:
        from desra_basicsr.localizer.training import train_localizer
        info = train_localizer(cfg, settings.out)
        return {k: osp.abspath(v) if k in ('config', 'checkpoint') else v for k, v in info.items()}

    outputs = (osp.join(settings.out, CONFIG_NAME), osp.join(settings.out, CHECKPOINT_NAME))
    inputs_files = tuple(path for pair in pairs for path in pair) + tuple(clean)
    job_settings = {
        'gan': osp.abspath(settings.gan),
        'masks': osp.abspath(settings.masks),
        'clean': osp.abspath(settings.clean) if settings.clean else None,
        'arch': settings.arch,
        'iters': settings.iters,
        'batch_size': settings.batch_size,
        'crop_size': settings.crop_size,
        'lr': settings.lr,
        'seed': settings.seed,
        'init_checkpoint': osp.abspath(settings.init_checkpoint) if settings.init_checkpoint else None,
        'artifact_weight': cfg.localizer.artifact_weight,
    }
    return run_job(
        FolderJob(
            command='localizer-train',
            out_dir=settings.out,
            input_dirs=inputs,
            settings=job_settings,
            items=[JobItem(ITEM, inputs_files, outputs)],
            process=process,
            weights={'init_checkpoint': settings.init_checkpoint} if settings.init_checkpoint else {},
            desc='localizer train',
            collective=True),
        overwrite=settings.overwrite,
        progress=settings.progress)
