"""Paths of the repository that tests use."""
import os.path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN_SCRIPT = osp.join(REPO_ROOT, 'desra_basicsr', 'train.py')
