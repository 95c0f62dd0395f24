"""``benchmarks/bench_localizer_fusion.py`` with ``--candidate``: SR, DeSRA-det, localiser, fusions and their rows."""
import json
import os

import cv2
import numpy as np
import pytest
import torch
import yaml

from benchmarks import bench_localizer_fusion as bench
from desra_basicsr.image_io import read_image
from desra_basicsr.inference import build_generator
from helpers.photos import skimage_photo_bgr

#: A tiny SRVGGNetCompact: every model of the test is one, with its own random weights.
ARCH = {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 3, 'upscale': 4, 'act_type': 'prelu'}
SPLITS = {'finetune': ('astronaut', 'coffee'), 'heldout': ('chelsea', 'rocket')}


def _model(root, label: str, seed: int, red: float = 0.0) -> list:
    """An option file and weights of a tiny x4 model; ``red`` is added to the last bias of the red channel."""
    torch.manual_seed(seed)
    state = build_generator('SRVGGNetCompact', ARCH).state_dict()
    state['body.8.bias'][:16] += red  # pixel-shuffled to the red output channel (0.1: about +25 grey levels)
    weights, opt = str(root / f'{label}.pth'), str(root / f'{label}.yml')
    torch.save({'params_ema': state}, weights)
    with open(opt, 'w') as f:
        yaml.safe_dump(
            {
                'name': label,
                'model_type': 'SRModel',
                'scale': 4,
                'network_g': {
                    'type': 'SRVGGNetCompact',
                    **ARCH
                }
            }, f)
    return [label, opt, weights]


def _corpus(root) -> list:
    """HR crops of four photos, their x4 bicubic LR images as two splits, an MSE-SR model and three candidates."""
    for folder in ('hr', *SPLITS):
        os.makedirs(root / folder)
    for split, names in SPLITS.items():
        for name in names:
            hr = skimage_photo_bgr(name)[:96, :96]
            cv2.imwrite(str(root / 'hr' / f'{name}.png'), hr)
            cv2.imwrite(str(root / split / f'{name}.png'), cv2.resize(hr, (24, 24), interpolation=cv2.INTER_CUBIC))
    mse = _model(root, 'mse', 0)
    argv = [
        '--finetune-lr',
        str(root / 'finetune'), '--heldout-lr',
        str(root / 'heldout'), '--hr',
        str(root / 'hr'), '--mse-opt', mse[1], '--mse-weights', mse[2]
    ]
    for seed, (label, red) in enumerate((('gan_a', 0.0), ('gan_red', 0.1), ('gan_c', 0.0)), start=1):
        argv += ['--candidate', *_model(root, label, seed, red)]
    return argv


def test_candidates_are_fused_with_and_without_the_colour_fix(tmp_path, capsys):
    work = tmp_path / 'work'
    argv = _corpus(tmp_path) + [
        '--work',
        str(work), '--arch', 'segformer-mit-b0', '--iters', '1', '--batch-size', '2', '--crop-size', '48',
        '--fuse-with-localizer'
    ]
    results = bench.main(argv)
    plain = ['gan_a', 'gan_red', 'gan_c', 'mse', 'fused', 'fused_localizer']
    assert list(results['fusion']) == plain + [f'{label}_colour' for label in plain]
    assert results['colour_sigma'] == 8.0 and sorted(results['fusion_order']['order']) == ['gan_a', 'gan_c', 'gan_red']
    for label, row in results['fusion'].items():
        assert 0 < row['psnr'] < 100 and 0 < row['ssim'] <= 1, label
        assert (row['artifact_area'] is None) == label.startswith('mse'), label
        assert label.startswith('mse') or 0 <= row['artifact_area'] <= 100
    rows = results['fusion']
    for name in SPLITS['heldout']:  # the red cast is gone with the fix, alone and in the fusions
        lr = read_image(str(tmp_path / 'heldout' / f'{name}.png')).astype(float).mean((0, 1))
        bias = {
            out: np.abs(read_image(str(work / out / f'{name}.png')).mean((0, 1)) - lr).max()
            for out in ('sr/heldout/gan_red', 'sr/heldout/gan_red_colour', 'fused_colour', 'fused_localizer_colour')
        }
        assert bias.pop('sr/heldout/gan_red') > 20 and max(bias.values()) < 2, bias
    assert set(results['localizer']['scores']) == {'gan_a', 'gan_red', 'gan_c'}
    assert {'chelsea.png', 'rocket.png'} <= set(os.listdir(work / 'fused_localizer_colour'))
    with open(work / 'fused_colour' / 'summary.json') as f:
        assert json.load(f)['meta']['lr'] == str(tmp_path / 'heldout')
    out = capsys.readouterr().out
    assert 'fused_localizer_colour' in out and 'gan_red_colour' in out
    with open(work / 'results.json') as f:
        assert json.load(f)['fusion'] == rows
    assert bench.main(argv)['fusion'] == rows  # resumed: the same figures


@pytest.mark.parametrize('labels', [('a', 'a', 'b'), ('a', 'b', 'mse'), ('a', 'b', 'fused'), ('a', 'b', 'a_colour')])
def test_candidate_labels_that_would_clash_with_a_row_are_refused(tmp_path, capsys, labels):
    argv = ['--work', str(tmp_path / 'work')]
    for label in labels:
        argv += ['--candidate', label, 'opt.yml', 'weights.pth']
    with pytest.raises(SystemExit) as err:
        bench.main(argv)
    assert err.value.code == 2 and 'labels must be unique, not "mse"' in capsys.readouterr().err
    assert not (tmp_path / 'work').exists()
