"""Small mmseg configs from the mmseg wheel, and random checkpoints for them (nothing is downloaded)."""
import os.path as osp

import torch


def mmseg_b0_config_path() -> str:
    """mmseg's SegFormer mit-b0 ADE20K 512x512 config, shipped inside the mmseg wheel."""
    from desra_basicsr.detection.mmseg_segmenter import default_config_path
    return osp.join(osp.dirname(default_config_path()), 'segformer_mit-b0_8xb2-160k_ade20k-512x512.py')


def write_small_config(folder, num_classes=150):
    """mit-b0 ADE20K config with a small test scale (fast on CPU) and the given class count."""
    path = osp.join(folder, f'segformer_b0_small_{num_classes}.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = ['{mmseg_b0_config_path()}']\n"
                f'model = dict(decode_head=dict(num_classes={num_classes}))\n'
                "test_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(128, 64), "
                "keep_ratio=True), dict(type='PackSegInputs')]\n")
    return path


def random_checkpoint(config, path):
    """Build the config's model with random weights (no init_cfg download) and save its state_dict."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    torch.manual_seed(0)
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(), 'meta': {}}, path)
    return path
