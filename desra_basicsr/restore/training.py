"""Train the restorer: random crops of zoo pairs, the DDPM noise-prediction loss, AdamW, optional EMA.

Plain PyTorch, no ``accelerate``: the project's job core already makes training a resumable job, torchrun gives
the processes (DistributedDataParallel with a ``DistributedSampler``), and mixed precision is ``torch.autocast``
with a gradient scaler on CUDA, so ``accelerate`` would add a dependency (absent from the offline wheelhouse) for
three lines.

Writes into the output folder:

* ``checkpoints/iter_NNNNNNN.pth``: the training state every ``checkpoint_every`` iterations (the two latest are
  kept), with the last :data:`LOSS_WINDOW` losses; an interrupted run started again resumes from the latest and
  reports the final loss an uninterrupted run would;
* ``restorer.pth``: the final restorer (the EMA weights when ``ema_decay`` is set), written atomically at the end,
  so its presence means a finished run.
"""
import copy
import os
import os.path as osp
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Literal, Optional, Tuple

import torch

from desra_basicsr.restore.checkpoint import read_restorer_checkpoint, save_checkpoint
from desra_basicsr.restore.data import PairCrops
from desra_basicsr.restore.model import BetaSchedule, Objective, Prediction, Restorer, RestorerConfig
from desra_basicsr.settings import Settings, setting
from desra_basicsr.utils import remove_stale_temp_files

#: The final restorer and the folder of the resumable checkpoints, relative to the output folder.
RESTORER_NAME = 'restorer.pth'
CHECKPOINT_DIR = 'checkpoints'
CHECKPOINT_PATTERN = re.compile(r'^iter_(\d+)\.pth$')
#: Resumable checkpoints kept (older ones are deleted).
KEPT_CHECKPOINTS = 2
#: Losses averaged into the reported final loss.
LOSS_WINDOW = 50
MAX_ITERS = 10_000_000
MAX_BATCH_SIZE = 1024
MAX_CROP_SIZE = 2048
MAX_TIMESTEPS = 10_000
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class TrainOptions(Settings):
    """The checked content of a restorer option file (``options/restore_*.yml``; see docs/restore.md).

    Attributes:
        name (str): The run's name.
        pairs (tuple[tuple[str, str, str], ...]): ``(image with artifacts, clean target, class)`` per sample.
        block_out_channels (tuple[int, ...]): ``model.block_out_channels``.
        layers_per_block (int): ``model.layers_per_block``.
        attention (bool): ``model.attention``.
        autoencoder (str | None): ``model.autoencoder``: a diffusers ``AutoencoderKL`` folder (None: pixel space).
        objective (str): ``model.objective``: ``diffusion`` (DiffGAR) or ``regression`` (the one-pass L1 baseline).
        train_timesteps (int): ``diffusion.train_timesteps`` (DDPM's T).
        beta_schedule (str): ``diffusion.beta_schedule``.
        mask_probability (float): ``diffusion.mask_probability``: share of samples labelled ``[MASK]``.
        prediction (str): ``diffusion.prediction``: ``epsilon``, ``v_prediction`` or ``sample``.
        residual (bool): ``diffusion.residual``: diffuse the correction ``clean - artifact``.
        iters (int): ``train.iters``.
        batch_size (int): ``train.batch_size``, per process.
        crop_size (int): ``train.crop_size``, pixels.
        lr (float): ``train.lr`` (AdamW).
        weight_decay (float): ``train.weight_decay``.
        ema_decay (float | None): ``train.ema_decay`` (None: no EMA).
        checkpoint_every (int): ``train.checkpoint_every``.
        seed (int): ``train.seed``.
        num_workers (int): ``train.num_workers``.
        mixed_precision (str): ``train.mixed_precision`` on CUDA: ``fp16``, ``bf16`` or ``no`` (CPU: always no).
    """
    name: str
    pairs: Tuple[Tuple[str, str, str], ...]
    block_out_channels: Tuple[int, ...] = (32, 64)
    layers_per_block: int = setting(1, lo=1, hi=8, flag='model.layers_per_block')
    attention: bool = setting(False, flag='model.attention')
    autoencoder: Optional[str] = setting(None, kind='path', flag='model.autoencoder')
    objective: Objective = setting('diffusion', flag='model.objective')
    train_timesteps: int = setting(1000, lo=2, hi=MAX_TIMESTEPS, flag='diffusion.train_timesteps')
    beta_schedule: BetaSchedule = setting('linear', flag='diffusion.beta_schedule')
    mask_probability: float = setting(0.5, lo=0, hi=1, flag='diffusion.mask_probability')
    prediction: Prediction = setting('epsilon', flag='diffusion.prediction')
    residual: bool = setting(False, flag='diffusion.residual')
    iters: int = setting(1000, lo=1, hi=MAX_ITERS, flag='train.iters')
    batch_size: int = setting(8, lo=1, hi=MAX_BATCH_SIZE, flag='train.batch_size')
    crop_size: int = setting(64, lo=8, hi=MAX_CROP_SIZE, flag='train.crop_size')
    lr: float = setting(2e-4, lo=0, lo_open=True, hi=1, flag='train.lr')
    weight_decay: float = setting(0.0, lo=0, hi=1, flag='train.weight_decay')
    ema_decay: Optional[float] = setting(None, lo=0, hi=1, hi_open=True, flag='train.ema_decay')
    checkpoint_every: int = setting(500, lo=1, hi=MAX_ITERS, flag='train.checkpoint_every')
    seed: int = setting(0, lo=0, hi=MAX_SEED, flag='train.seed')
    num_workers: int = setting(0, lo=0, hi=64, flag='train.num_workers')
    mixed_precision: Literal['no', 'fp16', 'bf16'] = setting('fp16', flag='train.mixed_precision')

    def config(self) -> RestorerConfig:
        """The restorer's architecture (classes sorted by name)."""
        return RestorerConfig(
            classes=tuple(sorted({cls for _, _, cls in self.pairs})),
            crop_size=self.crop_size,
            block_out_channels=tuple(self.block_out_channels),
            layers_per_block=self.layers_per_block,
            attention=self.attention,
            train_timesteps=self.train_timesteps,
            beta_schedule=self.beta_schedule,
            autoencoder=self.autoencoder,
            objective=self.objective,
            prediction=self.prediction,
            residual=self.residual)


def checkpoint_path(out_dir: str, iteration: int) -> str:
    """The resumable checkpoint of an iteration."""
    return osp.join(out_dir, CHECKPOINT_DIR, f'iter_{iteration:07d}.pth')


def saved_iterations(out_dir: str) -> List[int]:
    """Iterations of the resumable checkpoints in ``out_dir``, ascending."""
    folder = osp.join(out_dir, CHECKPOINT_DIR)
    found = [CHECKPOINT_PATTERN.match(name) for name in os.listdir(folder)] if osp.isdir(folder) else []
    return sorted(int(m.group(1)) for m in found if m)


def _batches(dataset: PairCrops, batch_size: int, num_workers: int, distributed: bool, seed: int,
             start: int) -> Any:
    """Endless batches from iteration ``start`` on: epochs of a (distributed) sampler, the first ones skipped."""
    from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Subset
    generator = torch.Generator().manual_seed(seed)
    sampler = DistributedSampler(dataset, shuffle=True, seed=seed) if distributed else \
        RandomSampler(dataset, generator=generator)
    per_epoch = len(sampler) // batch_size
    epoch, skip = divmod(start, per_epoch)
    while True:
        if distributed:
            sampler.set_epoch(epoch)
        else:
            generator.manual_seed(seed + epoch)
        dataset.epoch = epoch
        indices = list(sampler)[skip * batch_size:per_epoch * batch_size]
        yield from DataLoader(Subset(dataset, indices), batch_size=batch_size, num_workers=num_workers,
                              drop_last=True)
        epoch, skip = epoch + 1, 0


def _update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)


def _state(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def train_restorer(options: TrainOptions, out_dir: str, device: torch.device, rank: int = 0, world_size: int = 1,
                   progress: bool = True) -> Dict[str, Any]:
    """Train a restorer (see the module docstring); under torchrun every rank calls it, rank 0 writes the files.

    Args:
        options (TrainOptions): Data, model and schedule.
        out_dir (str): Output folder.
        device (torch.device): This rank's device.
        rank (int): This process's rank.
        world_size (int): The number of processes (> 1: DistributedDataParallel; the process group exists).
        progress (bool): Show a progress bar (rank 0).

    Returns:
        dict: ``checkpoint``, ``classes``, ``samples``, ``iters``, ``seconds``, ``resumed_from`` (iteration or
        None), ``final_loss``, ``space`` and ``objective``.
    """
    from tqdm import tqdm
    started = time.time()
    config = options.config()
    torch.manual_seed(options.seed)
    restorer = Restorer(config).to(device)
    unet = restorer.unet.train()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    ema = copy.deepcopy(unet).eval().requires_grad_(False) if options.ema_decay is not None else None
    cuda = device.type == 'cuda'
    amp = {'fp16': torch.float16, 'bf16': torch.bfloat16}.get(options.mixed_precision) if cuda else None
    scaler = torch.amp.GradScaler('cuda', enabled=amp == torch.float16)
    if rank == 0:  # a run killed while writing a checkpoint left its temporary file
        remove_stale_temp_files([osp.join(out_dir, CHECKPOINT_DIR)])
    saved = saved_iterations(out_dir)
    start = saved[-1] if saved else 0
    losses: List[float] = []
    if saved:
        ckpt = read_restorer_checkpoint(checkpoint_path(out_dir, start))
        unet.load_state_dict(ckpt['train_unet'])
        optimizer.load_state_dict(ckpt['optimizer'])
        scaler.load_state_dict(ckpt['scaler'])
        losses = list(ckpt.get('losses', []))  # absent from the checkpoints of older versions
        if ema is not None:
            ema.load_state_dict(ckpt['unet'])
    net = torch.nn.parallel.DistributedDataParallel(unet, device_ids=[device.index] if cuda else None) \
        if world_size > 1 else unet
    class_index = {name: i + 1 for i, name in enumerate(config.classes)}
    dataset = PairCrops(options.pairs, class_index, options.crop_size, options.mask_probability, options.seed,
                        options.batch_size * world_size)
    batches = _batches(dataset, options.batch_size, options.num_workers, world_size > 1, options.seed, start)
    bar = tqdm(total=options.iters, initial=start, desc='restore train', unit='iter', file=sys.stderr,
               dynamic_ncols=True, disable=not progress or rank != 0)
    for iteration in range(start + 1, options.iters + 1):
        artifact, clean, labels = (t.to(device, non_blocking=True) for t in next(batches))
        generator = torch.Generator(device).manual_seed(options.seed * 1_000_003 + iteration * world_size + rank)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = restorer.loss(artifact, clean, labels, generator=generator, unet=net)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if ema is not None:
            _update_ema(ema, unet, options.ema_decay)
        losses = (losses + [float(loss.detach())])[-LOSS_WINDOW:]
        bar.update(1)
        bar.set_postfix(loss=f'{losses[-1]:.4f}')
        if rank == 0 and (iteration % options.checkpoint_every == 0 or iteration == options.iters):
            _save_training_state(out_dir, config, iteration, unet, ema, optimizer, scaler, losses)
    bar.close()
    final = osp.join(out_dir, RESTORER_NAME)
    if rank == 0:
        save_checkpoint(final, config, _state(ema if ema is not None else unet), iter=options.iters)
    return {
        'checkpoint': final,
        'classes': list(config.classes),
        'samples': len(options.pairs),
        'iters': options.iters,
        'seconds': round(time.time() - started, 1),
        'resumed_from': start or None,
        'final_loss': round(sum(losses) / len(losses), 6) if losses else None,
        'space': config.space,
        'objective': config.objective,
    }


def _save_training_state(out_dir: str, config: RestorerConfig, iteration: int, unet: torch.nn.Module,
                         ema: Optional[torch.nn.Module], optimizer: torch.optim.Optimizer,
                         scaler: torch.amp.GradScaler, losses: List[float]) -> None:
    """Write the resumable checkpoint of ``iteration``, losses too; keep the :data:`KEPT_CHECKPOINTS` latest ones."""
    os.makedirs(osp.join(out_dir, CHECKPOINT_DIR), exist_ok=True)
    save_checkpoint(checkpoint_path(out_dir, iteration), config, _state(ema if ema is not None else unet),
                    train_unet=_state(unet), optimizer=optimizer.state_dict(), scaler=scaler.state_dict(),
                    losses=losses, iter=iteration)
    for old in saved_iterations(out_dir)[:-KEPT_CHECKPOINTS]:
        os.remove(checkpoint_path(out_dir, old))
