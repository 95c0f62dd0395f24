"""Random-weight stand-ins for mmseg segmentation checkpoints, for timings and checks without a download.

``desra detect --seg-config`` needs a checkpoint of the config's model; its speed and memory do not depend on the
weights, so the benchmarks and tests build the model with random weights and save them as mmseg does
(``{'state_dict': ..., 'meta': {}}``). Nothing is downloaded: the backbone's ``init_cfg`` (ImageNet weights) is
dropped and the decode head's ``SyncBN`` becomes ``BN`` (one process, CPU).
"""
import os.path as osp

import torch

#: The SegFormer mit-b0 ADE20K config in mmseg's wheel, beside the default mit-b5 one.
MIT_B0_CONFIG_NAME = 'segformer_mit-b0_8xb2-160k_ade20k-512x512.py'


def mit_b0_config_path() -> str:
    """Path of mmseg's SegFormer mit-b0 ADE20K 512x512 config, shipped inside the mmseg wheel.

    Returns:
        str: The config file path.
    """
    from desra_basicsr.detection.mmseg_segmenter import default_config_path
    return osp.join(osp.dirname(default_config_path()), MIT_B0_CONFIG_NAME)


def random_checkpoint(config: str, path: str, seed: int = 0) -> str:
    """Build the config's model with random weights and save its state dict as an mmseg checkpoint.

    Args:
        config (str): mmseg config file.
        path (str): Output checkpoint.
        seed (int): Seed of the random weights.

    Returns:
        str: ``path``.
    """
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    torch.manual_seed(seed)
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(), 'meta': {}}, path)
    return path
