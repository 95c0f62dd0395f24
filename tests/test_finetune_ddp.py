"""DeSRA fine-tuning under ``torch.distributed.run`` on the CPU (gloo): the DDP defects reproducible without a GPU.

* ``mask_pixel_opt`` with one rank whose masks are all empty: every rank must log the same loss keys, or BasicSR's
  ``reduce_loss_dict`` reduces tensors of different lengths across ranks (a hang or wrong logs);
* ``ema_decay: 0`` with SwinIR (which has buffers): validation on rank 0 must run the bare generator, not the
  DDP wrapper, whose forward is a collective the other ranks do not join;
* an option file asking for nccl on a machine without CUDA stops with a clear message instead of training on the
  CPU.
"""
import os.path as osp
import re

import pytest

from helpers.finetune import TINY_OPTIONS, load_options, make_tiny_data, save_weights
from helpers.paths import REPO_ROOT
from helpers.training import latest_state_iter, read_logs, run_train

pytestmark = pytest.mark.slow  # two torchrun ranks training: about 30 s each on 2 CPU cores

EMPTY_MASK_SCRIPT = osp.join(REPO_ROOT, 'tests', 'scripts', 'train_rank1_empty_masks.py')


def swinir_options(cwd: str) -> dict:
    opt = load_options(TINY_OPTIONS['swinir'])
    opt['train'].pop('perceptual_opt')
    opt['train'].update(ema_decay=0, total_iter=4, mask_pixel_opt={'type': 'L1Loss', 'loss_weight': 1.0})
    opt['datasets']['train'].update(return_mask=True)
    opt['val']['val_freq'] = 2
    make_tiny_data(cwd)
    save_weights(opt, cwd)
    return opt


def test_two_gloo_ranks_one_with_empty_masks_and_no_ema(tmp_path):
    cwd = str(tmp_path)
    opt = swinir_options(cwd)
    proc = run_train(opt, cwd, nproc=2, timeout=420, script=EMPTY_MASK_SCRIPT)
    log = read_logs(cwd, opt)
    assert latest_state_iter(cwd, opt) == 4, proc.stdout[-3000:]
    # iteration 1 is the discriminator warm-up (net_d_init_iters: 1): G is held and logs no G loss
    values = [float(v) for v in re.findall(r'l_g_mask_pix: ([-0-9.e+naninf]+)', log)]
    assert len(values) == 3 and all(v == v and v >= 0 for v in values), log[-3000:]
    assert len(re.findall(r'# desra_artifact_ratio: ', log)) >= 2  # validated on rank 0 while rank 1 waits


def test_nccl_in_the_option_file_without_cuda_fails_clearly(tmp_path):
    cwd = str(tmp_path)
    opt = swinir_options(cwd)
    opt['dist_params']['backend'] = 'nccl'
    proc = run_train(opt, cwd, nproc=2, timeout=300, check=False)
    assert proc.returncode != 0
    assert 'dist_params.backend is nccl but CUDA is not available' in proc.stdout
    assert latest_state_iter(cwd, opt) is None
