"""Shared fixtures; the helper functions live in the ``helpers`` package beside this file."""
import os.path as osp
from typing import Dict

import pytest
import torch

from helpers.finetune import make_vgg19_file
from helpers.photos import make_paired_sr_data

# tests/gpu/ needs CUDA (``make gpu-check`` runs it): not collected where there is none, so CPU runs show no skips.
collect_ignore = [] if torch.cuda.is_available() else ['gpu']


@pytest.fixture(scope='session')
def paired_sr_data(tmp_path_factory) -> Dict[str, str]:
    """Real-photo GT/LQ pairs (x4, 96x96 GT) shared by the whole test session."""
    return make_paired_sr_data(str(tmp_path_factory.mktemp('paired_sr_data')))


@pytest.fixture(scope='session')
def vgg19_file(tmp_path_factory):
    """A random VGG19 state dict (BasicSR's perceptual loss loads it), created once per session."""
    path = osp.join(str(tmp_path_factory.getbasetemp()), 'vgg19_random', 'vgg19-dcbb9e9d.pth')
    if not osp.exists(path):
        make_vgg19_file(path)
    return path
