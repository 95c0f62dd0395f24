"""``desra detect``: outputs, summary.json, resumability, bad inputs, mmseg options, sharding across ranks."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from desra_basicsr.commands import main
from desra_basicsr.jobs.core import shard
from helpers.mmseg import random_checkpoint, write_small_config
from helpers.paths import REPO_ROOT
from helpers.photos import make_pair, skimage_photo_bgr


def make_folders(root, names=('rocket', 'chelsea')):
    """MSE/GAN folders of real photos; 'rocket' carries a painted artifact."""
    mse_dir, gan_dir = osp.join(root, 'mse'), osp.join(root, 'gan')
    os.makedirs(mse_dir, exist_ok=True)
    os.makedirs(gan_dir, exist_ok=True)
    for name in names:
        if name == 'rocket':
            mse, gan, _ = make_pair('rocket', 20, 120, 90, 180)
        else:
            gan = skimage_photo_bgr(name)
            mse = cv2.GaussianBlur(gan, (0, 0), 1.0)
        cv2.imwrite(osp.join(mse_dir, f'{name}.png'), mse)
        cv2.imwrite(osp.join(gan_dir, f'{name}.png'), gan)
    return mse_dir, gan_dir


def detect(mse_dir, gan_dir, out, *extra):
    return main(['detect', '--mse', mse_dir, '--gan', gan_dir, '--out', out, *extra])


def load(out):
    with open(osp.join(out, 'summary.json')) as f:
        return json.load(f)


def leftovers(out):
    return glob.glob(osp.join(out, '**', '.*tmp*'), recursive=True)


def test_outputs_summary_and_resume(tmp_path, capsys):
    mse_dir, gan_dir = make_folders(str(tmp_path))
    out = str(tmp_path / 'out')
    assert detect(mse_dir, gan_dir, out, '--save-maps') == 0
    captured = capsys.readouterr()
    assert 'without semantics' in captured.err and '2 done, 0 kept' in captured.out
    mask = cv2.imread(osp.join(out, 'rocket.png'), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (427, 640) and mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    d_map = np.load(osp.join(out, 'maps', 'rocket_D.npy'))
    assert d_map.shape == (427, 640) and d_map.dtype == np.float32
    summary = load(out)
    assert summary['counts'] == {'done': 2, 'error': 0}
    rocket = summary['items']['rocket']
    assert rocket['status'] == 'done' and rocket['n_regions'] == 1
    assert rocket['artifact_fraction'] == pytest.approx((mask > 0).mean(), abs=1e-6)
    assert summary['items']['chelsea']['n_regions'] == 0 and summary['meta']['semantic'] == 'none'
    mtime = os.stat(osp.join(out, 'rocket.png')).st_mtime_ns
    assert detect(mse_dir, gan_dir, out, '--save-maps') == 0
    assert '0 done, 2 kept' in capsys.readouterr().out
    assert load(out) == summary
    assert os.stat(osp.join(out, 'rocket.png')).st_mtime_ns == mtime
    os.remove(osp.join(out, 'maps', 'chelsea_D.npy'))  # an incomplete item is redone
    assert detect(mse_dir, gan_dir, out, '--save-maps') == 0
    assert '1 done, 1 kept' in capsys.readouterr().out and load(out) == summary
    assert not leftovers(out)


def test_bad_inputs_are_recorded_and_exit_non_zero(tmp_path, capsys):
    mse_dir, gan_dir = make_folders(str(tmp_path), names=('rocket', ))
    photo = skimage_photo_bgr('coffee')[:120, :150]
    cv2.imwrite(osp.join(mse_dir, 'size.png'), photo)
    cv2.imwrite(osp.join(gan_dir, 'size.png'), photo[:100])
    cv2.imwrite(osp.join(mse_dir, 'lonely.png'), photo)
    with open(osp.join(gan_dir, 'corrupt.png'), 'wb') as f:
        f.write(b'\x89PNG garbage')
    cv2.imwrite(osp.join(mse_dir, 'corrupt.png'), photo)
    cv2.imwrite(osp.join(mse_dir, 'tiny.png'), photo[:8, :8])
    cv2.imwrite(osp.join(gan_dir, 'tiny.png'), photo[:8, :8])
    # converted by image_io's stated rule: gray -> 3 channels, RGBA -> drop alpha, 16 bit -> round(x / 257)
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(osp.join(mse_dir, 'gray.png'), gray)
    cv2.imwrite(osp.join(gan_dir, 'gray.png'), gray)
    cv2.imwrite(osp.join(mse_dir, 'rgba.png'), cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(osp.join(gan_dir, 'rgba.png'), photo)
    cv2.imwrite(osp.join(mse_dir, 'deep.png'), photo.astype(np.uint16) * 257)
    cv2.imwrite(osp.join(gan_dir, 'deep.png'), photo)
    out = str(tmp_path / 'out')
    assert detect(mse_dir, gan_dir, out) == 1
    err = capsys.readouterr().err
    items = load(out)['items']
    assert items['size']['status'] == 'error' and osp.join(gan_dir, 'size.png') in items['size']['message']
    assert 'differs' in items['size']['message']
    assert items['lonely']['status'] == 'error' and gan_dir in items['lonely']['message']
    assert items['corrupt']['message'].startswith(osp.join(gan_dir, 'corrupt.png'))
    assert 'smaller than the 11x11' in items['tiny']['message']
    for name in ('gray', 'rgba', 'deep', 'rocket'):
        assert items[name]['status'] == 'done'
        assert osp.isfile(osp.join(out, f'{name}.png'))
    assert items['deep']['n_regions'] == 0 and items['rgba']['artifact_fraction'] == 0
    for name in ('size', 'lonely', 'corrupt', 'tiny'):
        assert not osp.exists(osp.join(out, f'{name}.png'))
        assert name in err
    assert not leftovers(out)


def test_argument_errors(tmp_path, capsys):
    mse_dir, gan_dir = make_folders(str(tmp_path), names=('chelsea', ))
    out = str(tmp_path / 'out')
    absent = str(tmp_path / 'segformer.pth')
    assert detect(mse_dir, gan_dir, out, '--semantic', 'mmseg', '--seg-checkpoint', absent) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'error: {absent}') and 'segformer_mit-b5_640x640_160k_ade20k' in err
    assert detect(mse_dir, gan_dir, out, '--semantic', 'mmseg') == 2
    assert '--seg-checkpoint' in capsys.readouterr().err
    assert detect(mse_dir, gan_dir, out, '--class-table', str(tmp_path / 't.txt'), '--seg-checkpoint', absent) == 2
    assert capsys.readouterr().err.startswith(f'error: {tmp_path / "t.txt"}: class table file not found')
    assert detect(str(tmp_path / 'nope'), gan_dir, out) == 2
    assert '--mse is not a folder' in capsys.readouterr().err
    assert not osp.exists(osp.join(out, 'summary.json'))


def test_mmseg_semantics_and_maps(tmp_path):
    mse_dir, gan_dir = make_folders(str(tmp_path), names=('chelsea', ))
    config = write_small_config(str(tmp_path))
    checkpoint = random_checkpoint(config, str(tmp_path / 'b0.pth'))
    out = str(tmp_path / 'out')
    args = ['--seg-config', config, '--seg-checkpoint', checkpoint, '--save-maps', '--segment-input', 'mse']
    assert detect(mse_dir, gan_dir, out, *args) == 0
    for suffix in ('_D.npy', '_D_adjusted.npy', '_seg.png'):
        assert osp.isfile(osp.join(out, 'maps', f'chelsea{suffix}'))
    d_map = np.load(osp.join(out, 'maps', 'chelsea_D.npy'))
    adjusted = np.load(osp.join(out, 'maps', 'chelsea_D_adjusted.npy'))
    assert adjusted.shape == d_map.shape and (adjusted >= d_map - 1e-6).all()
    assert cv2.imread(osp.join(out, 'maps', 'chelsea_seg.png')).shape[:2] == d_map.shape
    meta = load(out)['meta']
    assert meta['semantic'] == 'mmseg' and meta['segment_input'] == 'mse' and meta['seg_config'] == config
    out2 = str(tmp_path / 'out2')
    assert detect(mse_dir, gan_dir, out2, '--method', 'desra-no-semantics', *args) == 0
    assert not osp.exists(osp.join(out2, 'maps', 'chelsea_seg.png'))


def test_a_seg_config_edited_in_place_is_other_settings(tmp_path, capsys):
    mse_dir, gan_dir = make_folders(str(tmp_path), names=('chelsea', ))
    base = write_small_config(str(tmp_path))
    checkpoint = random_checkpoint(base, str(tmp_path / 'b0.pth'))
    config = tmp_path / 'config.py'
    plain = f"_base_ = ['{base}']\n"
    config.write_text(plain)
    out = str(tmp_path / 'out')
    args = ['--seg-config', str(config), '--seg-checkpoint', checkpoint]
    assert detect(mse_dir, gan_dir, out, *args) == 0
    summary = load(out)
    config.write_text(plain + '# a comment: the same values, resumed\n')
    assert detect(mse_dir, gan_dir, out, *args) == 0
    assert '0 done, 1 kept' in capsys.readouterr().out and load(out) == summary
    # The config edited in place, then its _base_ file: other settings, refused, nothing rewritten.
    config.write_text(plain + 'model = dict(decode_head=dict(align_corners=True))\n')
    assert detect(mse_dir, gan_dir, out, *args) == 2
    assert 'other settings (seg_config_sha256: ' in capsys.readouterr().err and load(out) == summary
    config.write_text(plain)
    with open(base) as f:
        text = f.read()
    with open(base, 'w') as f:
        f.write(text.replace('scale=(128, 64)', 'scale=(96, 48)'))
    assert detect(mse_dir, gan_dir, out, *args) == 2
    assert 'other settings (seg_config_sha256: ' in capsys.readouterr().err and load(out) == summary
    with open(base, 'w') as f:
        f.write(text)
    # A summary written before the digest was recorded: its config is unknown, refused like any added setting.
    del summary['meta']['seg_config_sha256']
    with open(osp.join(out, 'summary.json'), 'w') as f:
        json.dump(summary, f)
    assert detect(mse_dir, gan_dir, out, *args) == 2
    assert 'other settings (seg_config_sha256: null -> ' in capsys.readouterr().err


def test_shards_are_disjoint_and_cover():
    items = list(range(11))
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items and parts[1] == [1, 4, 7, 10]
    with pytest.raises(ValueError):
        shard(items, 3, 3)


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    mse_dir, gan_dir = make_folders(str(tmp_path), names=('rocket', 'chelsea', 'coffee'))
    single, multi = str(tmp_path / 'single'), str(tmp_path / 'multi')
    assert detect(mse_dir, gan_dir, single) == 0
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m', 'desra_basicsr',
        'detect', '--mse', mse_dir, '--gan', gan_dir, '--out', multi
    ]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load(multi)['items'] == load(single)['items']
    for name in ('rocket', 'chelsea', 'coffee'):
        np.testing.assert_array_equal(
            cv2.imread(osp.join(multi, f'{name}.png')), cv2.imread(osp.join(single, f'{name}.png')))
