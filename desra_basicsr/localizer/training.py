"""Train the artifact localiser with mmsegmentation's own training (mmengine ``Runner``).

Writes into the output folder:

* ``localizer_config.py``: the full mmseg config (no ``_base_`` left: it loads without the wheel's config tree);
* ``localizer.pth``: an mmseg checkpoint (``state_dict`` and ``meta.dataset_meta.classes``) that
  ``desra detect --method localizer`` and ``desra fuse`` load with the config;
* ``work_dir/``: mmengine's logs and the latest training checkpoint. An interrupted run started again with the
  same settings resumes from that checkpoint.

Both final files are written atomically after training, so their presence means a finished run.
"""
import os.path as osp
import time
from typing import Any, Dict

import torch
from mmengine.hooks import Hook

from desra_basicsr.localizer.classes import CLASSES, PALETTE
from desra_basicsr.localizer.config import CHECKPOINT_NAME, CONFIG_NAME
from desra_basicsr.utils import atomic_write_path


def _plain_message_hub(checkpoint: dict) -> None:
    """Drop the logged-scalar history from an mmengine training checkpoint, in place.

    mmengine stores it as ``HistoryBuffer`` objects whose pickles need ``getattr``, which ``torch.load`` with
    ``weights_only=True`` (torch >= 2.6) rightly refuses; without them the checkpoint holds only tensors and plain
    data and resumes safely. The history only smooths the logged values.
    """
    hub = checkpoint.get('message_hub')
    if isinstance(hub, dict):
        for key in list(hub.get('log_scalars', {})):
            hub['log_scalars'].pop(key)
            hub.get('resumed_keys', {}).pop(key, None)


class _PlainCheckpointHook(Hook):
    """mmengine hook applying :func:`_plain_message_hub` to every checkpoint the runner saves."""

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:  # noqa: D102 (mmengine hook protocol)
        _plain_message_hub(checkpoint)


def train_localizer(cfg, out_dir: str) -> Dict[str, Any]:
    """Train the localiser a config of :func:`desra_basicsr.localizer.config.build_train_config` describes, and
    write its config and checkpoint (see the module docstring).

    Args:
        cfg (mmengine.config.Config): The training config (its ``work_dir`` holds the resumable checkpoints).
        out_dir (str): Output folder of ``localizer_config.py`` and ``localizer.pth``.

    Returns:
        dict: ``config`` and ``checkpoint`` paths, ``images`` (training pairs), ``clean_images``,
        ``source_images`` (the images of each source), ``iters``, ``seconds`` (wall time of this call),
        ``resumed_from`` (checkpoint or None) and ``final_loss``.

    Raises:
        DesraInputError: Unusable training data (see :func:`desra_basicsr.localizer.dataset.list_artifact_pairs`).
    """
    from mmengine.dist import get_rank
    from mmengine.runner import Runner, find_latest_checkpoint
    from mmseg.utils import register_all_modules

    from desra_basicsr.localizer import dataset, transforms  # noqa: F401 (register the dataset and transforms)
    from desra_basicsr.localizer.sampler import source_sizes

    cfg = cfg.copy()
    resumed_from = find_latest_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None
    if resumed_from:
        cfg.resume, cfg.load_from = True, None  # mmengine finds work_dir's latest checkpoint itself
    init_checkpoint = None if resumed_from else cfg.load_from
    register_all_modules(init_default_scope=True)
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(_PlainCheckpointHook())
    runner.train()
    seconds = time.time() - start
    loss = runner.message_hub.get_scalar('train/loss').current() if 'train/loss' in runner.message_hub.log_scalars \
        else None
    config_path, checkpoint_path = osp.join(out_dir, CONFIG_NAME), osp.join(out_dir, CHECKPOINT_NAME)
    iters = cfg.train_cfg.max_iters
    data = runner.train_dataloader.dataset
    sizes = source_sizes(data)
    images = sum(n for n, part in zip(sizes, data.datasets) if part.mask_dir)
    clean = sum(sizes) - images
    if get_rank() == 0:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        meta = dict(
            dataset_meta=dict(classes=list(CLASSES), palette=PALETTE),
            localizer=dict(arch=cfg.localizer.arch, iters=iters, images=images, clean_images=clean,
                           init_checkpoint=init_checkpoint))
        with atomic_write_path(checkpoint_path) as tmp:
            torch.save(dict(state_dict=state, meta=meta), tmp)
        cfg.resume, cfg.load_from = False, None
        with atomic_write_path(config_path) as tmp:
            cfg.dump(tmp)
    return dict(
        config=config_path,
        checkpoint=checkpoint_path,
        images=images,
        clean_images=clean,
        source_images=sizes,
        iters=iters,
        seconds=round(seconds, 2),
        resumed_from=resumed_from,
        final_loss=None if loss is None else round(float(loss), 6))
