"""Small mmseg configs from the mmseg wheel, and random checkpoints for them (nothing is downloaded)."""
import os.path as osp

from desra_basicsr.tools.mmseg_weights import mit_b0_config_path, random_checkpoint

__all__ = ['mit_b0_config_path', 'random_checkpoint', 'write_small_config']


def write_small_config(folder, num_classes=150):
    """mit-b0 ADE20K config with a small test scale (fast on CPU) and the given class count."""
    path = osp.join(folder, f'segformer_b0_small_{num_classes}.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = ['{mit_b0_config_path()}']\n"
                f'model = dict(decode_head=dict(num_classes={num_classes}))\n'
                "test_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(128, 64), "
                "keep_ratio=True), dict(type='PackSegInputs')]\n")
    return path
