"""``desra sr`` and :mod:`desra_basicsr.inference`: tiled = untiled, resume, option files, bad input."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import yaml
from skimage import data as skdata

from desra_basicsr.checkpoints import read_checkpoint, select_state_dict
from desra_basicsr.commands import main
from desra_basicsr.errors import DesraInputError
from desra_basicsr.image_io import read_image
from desra_basicsr.inference import SRInferencer, build_generator

VGG_KWARGS = {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 3, 'upscale': 4, 'act_type': 'prelu'}
VGG_ARCH_OPTS = [f'{k}={v}' for k, v in VGG_KWARGS.items()]
# Receptive-field radius of the tiny SRVGGNetCompact: 5 3x3 convs at LR = 5 pixels; the pad covers it.
TILE_PAD = 6


def _photo(name: str, size: tuple) -> np.ndarray:
    """A scikit-image photo as BGR uint8, resized to ``size`` (w, h) with area interpolation."""
    rgb = getattr(skdata, name)()
    return cv2.resize(np.ascontiguousarray(rgb[:, :, ::-1]), size, interpolation=cv2.INTER_AREA)


def _save_vgg(path: str, key: str = 'params_ema') -> None:
    torch.manual_seed(0)
    net = build_generator('SRVGGNetCompact', VGG_KWARGS)
    torch.save({key: net.state_dict()}, path)


@pytest.fixture()
def lr_folder(tmp_path):
    folder = tmp_path / 'lr'
    folder.mkdir()
    cv2.imwrite(str(folder / 'chelsea.png'), _photo('chelsea', (75, 50)))
    cv2.imwrite(str(folder / 'coffee.jpg'), _photo('coffee', (60, 40)))
    return str(folder)


@pytest.fixture()
def weights(tmp_path):
    path = str(tmp_path / 'tiny_vgg.pth')
    _save_vgg(path)
    return path


def _sr(weights: str, lr: str, out: str, *extra: str) -> int:
    return main([
        'sr', '--arch', 'SRVGGNetCompact', '--arch-opt', *VGG_ARCH_OPTS, '--weights', weights, '--input', lr, '--out',
        out, '--device', 'cpu', *extra
    ])


def test_tiled_equals_untiled_interior(tmp_path, lr_folder, weights):
    assert _sr(weights, lr_folder, str(tmp_path / 'whole')) == 0
    assert _sr(weights, lr_folder, str(tmp_path / 'tiled'), '--tile', '16', '--tile-pad', str(TILE_PAD)) == 0
    for name in ('chelsea', 'coffee'):
        whole = read_image(str(tmp_path / 'whole' / f'{name}.png')).astype(int)
        tiled = read_image(str(tmp_path / 'tiled' / f'{name}.png')).astype(int)
        assert whole.shape == tiled.shape
        border = 4 * TILE_PAD
        assert np.abs(whole - tiled)[border:-border, border:-border].max() <= 1
    chelsea = read_image(str(tmp_path / 'whole' / 'chelsea.png'))
    assert chelsea.shape == (200, 300, 3)


def test_colour_sigma_gives_the_outputs_the_lr_colours(tmp_path, lr_folder, weights, capsys):
    """A generator whose last bias pushes red up (a colour drift); the colour fix brings the LR colours back."""
    state = torch.load(weights)
    state['params_ema']['body.8.bias'][:16] += 0.1  # pixel-shuffled to the red output channel: +25 grey levels
    weights = str(tmp_path / 'red.pth')
    torch.save(state, weights)
    assert _sr(weights, lr_folder, str(tmp_path / 'plain')) == 0
    args = (weights, lr_folder, str(tmp_path / 'fixed'), '--colour-sigma', '8')
    assert _sr(*args) == 0
    for name, ext in (('chelsea', 'png'), ('coffee', 'jpg')):
        lr = read_image(osp.join(lr_folder, f'{name}.{ext}')).astype(float)
        bias = {out: np.abs(read_image(str(tmp_path / out / f'{name}.png')).mean((0, 1)) - lr.mean((0, 1))).max()
                for out in ('plain', 'fixed')}
        assert bias['plain'] > 20 and bias['fixed'] < 2, bias
    summary = json.loads((tmp_path / 'fixed' / 'summary.json').read_text())
    assert summary['meta']['colour_sigma'] == 8.0
    assert 'colour_sigma' not in json.loads((tmp_path / 'plain' / 'summary.json').read_text())['meta']
    capsys.readouterr()
    assert _sr(*args[:-1], '4') == 2  # another sigma on the same folder: refused
    assert 'other settings' in capsys.readouterr().err
    assert _sr(weights, lr_folder, str(tmp_path / 'neg'), '--colour-sigma', '-1') == 2
    assert '--colour-sigma -1.0: must be a finite number in [0, 65536]' in capsys.readouterr().err


def test_tiles_without_enough_pad_differ_and_size_multiple_padding():
    """The pad matters (seams without it), and inputs not divisible by a window are padded and cropped back."""
    torch.manual_seed(0)
    img = _photo('astronaut', (45, 37))
    net = build_generator('SRVGGNetCompact', VGG_KWARGS)
    whole = SRInferencer(net, device='cpu').enhance(img).astype(int)
    no_pad = SRInferencer(net, device='cpu', tile=16, tile_pad=0).enhance(img).astype(int)
    assert np.abs(whole - no_pad).max() > 1
    rrdb = build_generator('RRDBNet', {
        'num_in_ch': 3,
        'num_out_ch': 3,
        'scale': 2,
        'num_feat': 4,
        'num_block': 1,
        'num_grow_ch': 2
    })
    out = SRInferencer(rrdb, device='cpu', tile=16, tile_pad=8, size_multiple=2).enhance(img)
    assert out.shape == (74, 90, 3)


def test_option_file_and_resume(tmp_path, lr_folder):
    weights = str(tmp_path / 'g.pth')
    _save_vgg(weights, key='params')
    opt = {
        'name': 'x',
        'model_type': 'SRModel',
        'scale': 4,
        'network_g': {
            'type': 'SRVGGNetCompact',
            **VGG_KWARGS
        },
        'path': {
            'pretrain_network_g': weights,
            'param_key_g': 'params',
            'strict_load_g': True
        }
    }
    opt_path = str(tmp_path / 'opt.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f)
    out = str(tmp_path / 'out')
    assert main(['sr', '--opt', opt_path, '--input', lr_folder, '--out', out, '--device', 'cpu']) == 0
    with open(osp.join(out, 'summary.json')) as f:
        first = json.load(f)
    assert first['counts'] == {'done': 2, 'error': 0}
    before = os.stat(osp.join(out, 'chelsea.png')).st_mtime_ns
    os.remove(osp.join(out, 'coffee.png'))
    assert main(['sr', '--opt', opt_path, '--input', lr_folder, '--out', out, '--device', 'cpu']) == 0
    with open(osp.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary == first
    assert summary['items']['chelsea']['sr_size'] == [300, 200]
    assert os.stat(osp.join(out, 'chelsea.png')).st_mtime_ns == before
    assert sorted(os.listdir(out)) == ['chelsea.png', 'coffee.png', 'summary.json']


def test_corrupt_image_is_recorded_and_others_written(tmp_path, lr_folder, weights, capsys):
    with open(osp.join(lr_folder, 'broken.png'), 'wb') as f:
        f.write(b'not a png')
    out = str(tmp_path / 'out')
    assert _sr(weights, lr_folder, out) == 1
    with open(osp.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['items']['broken']['status'] == 'error'
    assert 'broken.png' in summary['items']['broken']['message']
    assert sorted(os.listdir(out)) == ['chelsea.png', 'coffee.png', 'summary.json']


@pytest.mark.parametrize(
    'case', ['missing_weights', 'bad_key', 'wrong_arch_size', 'fp16_cpu', 'unknown_arch', 'no_images', 'bad_arch_opt'])
def test_bad_arguments_exit_2_naming_the_problem(tmp_path, lr_folder, weights, capsys, case):
    out = str(tmp_path / 'out')
    empty = tmp_path / 'empty'
    empty.mkdir()
    args = {
        'missing_weights': (['--weights', str(tmp_path / 'nope.pth')], 'nope.pth: checkpoint file not found'),
        'bad_key': (['--param-key', 'params_x'], "no state dict under 'params_x'"),
        'wrong_arch_size': (['--arch-opt', 'num_feat=16'], 'does not fit SRVGGNetCompact'),
        'fp16_cpu': (['--fp16'], 'half precision needs a CUDA device'),
        'unknown_arch': (['--arch', 'NoSuchNet'], 'NoSuchNet: unknown architecture'),
        'no_images': (['--input', str(empty)], '--input holds no image'),
        'bad_arch_opt': (['--arch-opt', 'num_feat'], 'expected KEY=VALUE'),
    }[case]
    extra, message = args
    assert _sr(weights, lr_folder, out, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err
    assert not osp.exists(out)


def test_state_dict_prefers_params_ema_and_strips_module(tmp_path):
    state = {'module.w': torch.zeros(1)}
    path = str(tmp_path / 'ckpt.pth')
    torch.save({'params': {'w': torch.ones(1)}, 'params_ema': state}, path)
    loaded, key = select_state_dict(read_checkpoint(path), path)
    assert key == 'params_ema' and list(loaded) == ['w'] and loaded['w'].item() == 0
    torch.save(state, path)
    assert select_state_dict(read_checkpoint(path), path)[1] == ''
    with pytest.raises(DesraInputError, match='ckpt.pth'):
        torch.save({'meta': {'x': 1}}, path)
        select_state_dict(read_checkpoint(path), path)


@pytest.mark.parametrize('tile_pad', [30, 31])
def test_tiles_of_a_pixel_unshuffle_generator_equal_the_whole_image(tile_pad):
    """RRDBNet at x2 groups 2x2 pixels (pixel-unshuffle): a tile window starting on an odd row grouped them otherwise,
    so a larger pad gave a worse result (an odd pad put every tile but the first off the grid)."""
    torch.manual_seed(0)
    net = build_generator('RRDBNet', {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1,
                                      'num_grow_ch': 4, 'scale': 2})
    img = _photo('astronaut', (70, 70))
    whole = SRInferencer(net, 'cpu', size_multiple=2).enhance(img).astype(int)
    tiled = SRInferencer(net, 'cpu', tile=24, tile_pad=tile_pad, size_multiple=2).enhance(img).astype(int)
    assert np.abs(whole - tiled).max() <= 1
