"""``desra localizer train``, ``desra detect --method localizer`` and ``desra fuse`` end to end, with bad inputs."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from scipy import ndimage

from desra_basicsr.commands import main
from helpers.localizer import make_artifact_data, mmengine_log
from helpers.photos import paint_noise, skimage_photo_bgr


def load(out):
    with open(osp.join(out, 'summary.json')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def trained_localizer(tmp_path_factory):
    """A localiser trained by the command for two iterations on painted real-photo crops."""
    root = str(tmp_path_factory.mktemp('localizer'))
    data = make_artifact_data(osp.join(root, 'data'))
    out = osp.join(root, 'loc')
    args = ['localizer', 'train', '--gan', data['img'], '--masks', data['mask'], '--out', out, '--arch',
            'segformer-mit-b0', '--iters', '2', '--batch-size', '2', '--crop-size', '48', '--num-workers', '0']
    assert main(args) == 0
    return dict(data=data, out=out, args=args, config=osp.join(out, 'localizer_config.py'),
                checkpoint=osp.join(out, 'localizer.pth'))


def test_localizer_train_writes_config_checkpoint_and_summary(trained_localizer, capsys):
    out = trained_localizer['out']
    record = load(out)['items']['localizer']
    assert record['status'] == 'done' and record['images'] == 4 and record['iters'] == 2
    assert osp.isfile(trained_localizer['config']) and osp.isfile(trained_localizer['checkpoint'])
    capsys.readouterr()
    assert main(trained_localizer['args']) == 0  # finished: kept, not trained again
    assert '0 done, 1 kept' in capsys.readouterr().out
    assert main(trained_localizer['args'][:-6] + ['--iters', '3', '--batch-size', '2', '--num-workers', '0']) == 2
    assert 'other settings' in capsys.readouterr().err


def test_localizer_train_bad_inputs(trained_localizer, tmp_path, capsys):
    data = trained_localizer['data']
    base = ['localizer', 'train', '--out', str(tmp_path / 'out'), '--iters', '1', '--arch', 'segformer-mit-b0']
    absent = str(tmp_path / 'absent')
    assert main(base + ['--gan', data['img'], '--masks', absent]) == 2
    assert f'--masks {absent}: {absent} is not a folder' in capsys.readouterr().err
    masks = tmp_path / 'masks'
    masks.mkdir()
    for name in os.listdir(data['mask'])[:3]:
        cv2.imwrite(str(masks / name), cv2.imread(osp.join(data['mask'], name), cv2.IMREAD_UNCHANGED))
    assert main(base + ['--gan', data['img'], '--masks', str(masks)]) == 2
    assert 'no partner file' in capsys.readouterr().err
    assert main(base + ['--gan', data['img'], '--masks', data['mask'], '--arch', 'deeplabv3plus-r18', '--batch-size',
                        '1']) == 2
    assert '--batch-size 1: must be >= 2' in capsys.readouterr().err


def test_detect_with_the_localizer_needs_no_mse(trained_localizer, tmp_path, capsys):
    gan = trained_localizer['data']['img']
    out = str(tmp_path / 'masks')
    args = ['detect', '--method', 'localizer', '--gan', gan, '--out', out, '--localizer-config',
            trained_localizer['config'], '--localizer-checkpoint', trained_localizer['checkpoint'], '--min-area', '0',
            '--save-maps']
    assert main(args) == 0
    summary = load(out)
    assert summary['meta']['method'] == 'localizer' and summary['meta']['mse'] is None
    for name in ('astronaut', 'chelsea', 'coffee', 'rocket'):
        mask = cv2.imread(osp.join(out, f'{name}.png'), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 255}
        prob = np.load(osp.join(out, 'maps', f'{name}_prob.npy'))
        assert prob.shape == (64, 64) and 0 <= prob.min() and prob.max() <= 1
        np.testing.assert_array_equal(mask > 0, ndimage.binary_fill_holes(prob >= 0.5, structure=np.ones((3, 3))))
        assert summary['items'][name]['status'] == 'done'
    capsys.readouterr()
    assert main(['detect', '--method', 'localizer', '--gan', gan, '--out', str(tmp_path / 'no_files')]) == 2
    assert 'needs --localizer-config and --localizer-checkpoint' in capsys.readouterr().err
    assert main(['detect', '--gan', gan, '--out', str(tmp_path / 'other')]) == 2  # DeSRA-det without --mse
    assert 'give --mse' in capsys.readouterr().err


def _candidates(root: str, names=('chelsea', 'coffee')) -> dict:
    """Two candidate folders with painted artifacts in different places and the clean photo as MSE-SR output."""
    crops = {'chelsea': (160, 320), 'coffee': (0, 448)}
    folders = {key: osp.join(root, key) for key in ('a', 'b', 'mse')}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    for i, name in enumerate(names):
        top, left = crops[name]
        clean = np.ascontiguousarray(skimage_photo_bgr(name)[top:top + 128, left:left + 128])
        cv2.imwrite(osp.join(folders['a'], f'{name}.png'), paint_noise(clean, 16, 16, 40, seed=2 * i))
        cv2.imwrite(osp.join(folders['b'], f'{name}.png'), paint_noise(clean, 72, 72, 40, seed=2 * i + 1))
        cv2.imwrite(osp.join(folders['mse'], f'{name}.png'), clean)
    return folders


def test_fuse_with_mse_takes_each_region_from_the_clean_candidate(tmp_path, capsys):
    folders = _candidates(str(tmp_path))
    out = str(tmp_path / 'fused')
    args = ['fuse', '--inputs', folders['a'], folders['b'], '--mse', folders['mse'], '--out', out]
    assert main(args) == 0
    summary = load(out)
    assert summary['meta']['sources'][2] == osp.abspath(folders['mse'])
    for name in ('chelsea', 'coffee'):
        fused = cv2.imread(osp.join(out, f'{name}.png'))
        clean = cv2.imread(osp.join(folders['mse'], f'{name}.png'))
        np.testing.assert_array_equal(fused[16:56, 16:56], clean[16:56, 16:56])
        np.testing.assert_array_equal(fused[72:112, 72:112], clean[72:112, 72:112])
        index = cv2.imread(osp.join(out, 'maps', f'{name}.png'), cv2.IMREAD_UNCHANGED)
        assert index.shape == (128, 128) and (index[16:56, 16:56] == 1).all() and (index[72:112, 72:112] == 0).all()
        shares = summary['items'][name]['shares']
        assert len(shares) == 3 and sum(shares) == pytest.approx(1.0, abs=1e-5) and shares[0] > shares[1] > 0
    capsys.readouterr()
    assert main(args) == 0
    assert '0 done, 2 kept' in capsys.readouterr().out


def test_fuse_with_the_localizer(trained_localizer, tmp_path):
    folders = _candidates(str(tmp_path), names=('chelsea', ))
    out = str(tmp_path / 'fused')
    assert main(['fuse', '--inputs', folders['a'], folders['b'], folders['mse'], '--out', out, '--localizer-config',
                 trained_localizer['config'], '--localizer-checkpoint', trained_localizer['checkpoint']]) == 0
    record = load(out)['items']['chelsea']
    assert record['status'] == 'done' and len(record['shares']) == 3
    assert cv2.imread(osp.join(out, 'chelsea.png')).shape == (128, 128, 3)


def test_fuse_with_lr_fixes_the_colours_of_every_candidate(tmp_path, capsys):
    folders = _candidates(str(tmp_path))
    lr = tmp_path / 'lr'
    lr.mkdir()
    for name in ('chelsea', 'coffee'):
        clean = cv2.imread(osp.join(folders['mse'], f'{name}.png'))
        cv2.imwrite(str(lr / f'{name}.png'), cv2.resize(clean, (32, 32), interpolation=cv2.INTER_AREA))
        path = osp.join(folders['a'], f'{name}.png')  # candidate a (the preferred one) drifts to red
        cast = cv2.imread(path).astype(np.int16) + np.array([0, 0, 25], np.int16)
        cv2.imwrite(path, np.clip(cast, 0, 255).astype(np.uint8))
    base = ['fuse', '--inputs', folders['a'], folders['b'], '--mse', folders['mse']]
    assert main(base + ['--out', str(tmp_path / 'plain')]) == 0
    args = base + ['--lr', str(lr), '--out', str(tmp_path / 'fixed')]
    assert main(args) == 0
    meta = load(str(tmp_path / 'fixed'))['meta']
    assert meta['lr'] == str(lr) and meta['colour_sigma'] == 8.0
    assert 'lr' not in load(str(tmp_path / 'plain'))['meta']
    for name in ('chelsea', 'coffee'):
        clean = cv2.imread(osp.join(folders['mse'], f'{name}.png')).astype(float)
        red = {out: (cv2.imread(str(tmp_path / out / f'{name}.png'))[:, :, 2] - clean[:, :, 2]).mean()
               for out in ('plain', 'fixed')}
        assert red['plain'] > 10 and abs(red['fixed']) < 2, red
    capsys.readouterr()
    assert main(args) == 0
    assert '0 done, 2 kept' in capsys.readouterr().out
    assert main(args[:-2] + ['--colour-sigma', '4', '--out', str(tmp_path / 'fixed')]) == 2
    assert 'other settings' in capsys.readouterr().err
    assert main(args[:-2] + ['--colour-sigma', '0', '--out', str(tmp_path / 'zero')]) == 2
    assert '--colour-sigma 0.0: must be a finite number in (0, 1000]' in capsys.readouterr().err
    # An LR image of the wrong size, and one missing: those images fail (exit 1), naming the file.
    cv2.imwrite(str(lr / 'chelsea.png'), np.zeros((30, 32, 3), np.uint8))
    os.remove(lr / 'coffee.png')
    assert main(base + ['--lr', str(lr), '--out', str(tmp_path / 'bad')]) == 1
    err = capsys.readouterr().err
    assert f'{lr / "chelsea.png"}: the SR image (128x128) is not an integer multiple of its LR input (32x30)' in err
    assert f'coffee: no partner file in --lr {lr}' in err
    assert not [f for f in os.listdir(tmp_path / 'bad') if f.endswith('.png')]


def test_fuse_bad_inputs(tmp_path, capsys):
    folders = _candidates(str(tmp_path))
    out = str(tmp_path / 'fused')
    assert main(['fuse', '--inputs', folders['a'], '--mse', folders['mse'], '--out', out]) == 2
    assert 'at least 2 folders' in capsys.readouterr().err
    assert main(['fuse', '--inputs', folders['a'], folders['b'], '--out', out]) == 2
    assert 'needs artifact scores' in capsys.readouterr().err
    # A stem missing from one folder, and a candidate of another size: those images fail (exit 1), the rest is fused.
    os.remove(osp.join(folders['b'], 'coffee.png'))
    small = cv2.imread(osp.join(folders['a'], 'chelsea.png'))[:100]
    cv2.imwrite(osp.join(folders['a'], 'chelsea.png'), small)
    assert main(['fuse', '--inputs', folders['a'], folders['b'], '--mse', folders['mse'], '--out', out]) == 1
    err = capsys.readouterr().err
    assert f'coffee: no partner file in --inputs #2 {folders["b"]}' in err
    assert 'chelsea.png: size 128x128 differs from' in err and 'a/chelsea.png (128x100)' in err
    items = load(out)['items']
    assert items['coffee']['status'] == 'error' and items['chelsea']['status'] == 'error'
    assert not osp.exists(osp.join(out, 'chelsea.png')) and not osp.exists(osp.join(out, 'coffee.png'))


def test_fuse_names_the_file_of_images_too_small_to_score(tmp_path, capsys):
    folders = _candidates(str(tmp_path), names=('chelsea', ))
    for key in ('a', 'b', 'mse'):
        path = osp.join(folders[key], 'chelsea.png')
        cv2.imwrite(path, cv2.imread(path)[:6, :6])
    out = str(tmp_path / 'fused')
    assert main(['fuse', '--inputs', folders['a'], folders['b'], '--mse', folders['mse'], '--out', out]) == 1
    message = f'{osp.join(folders["a"], "chelsea.png")}: image size 6x6 is smaller than the 11x11 indicator window'
    assert f'error: {message}\n' in capsys.readouterr().err
    assert load(out)['items']['chelsea'] == {'status': 'error', 'message': message}


def test_report_shows_the_fusion_column(tmp_path):
    from desra_basicsr.evaluation.report import CAPTION_HEIGHT, SOURCE_COLOURS
    folders = _candidates(str(tmp_path), names=('chelsea', ))
    fused = str(tmp_path / 'fused')
    assert main(['fuse', '--inputs', folders['a'], folders['b'], '--mse', folders['mse'], '--out', fused]) == 0
    lr, masks = tmp_path / 'lr', tmp_path / 'masks'
    lr.mkdir()
    masks.mkdir()
    clean = cv2.imread(osp.join(folders['mse'], 'chelsea.png'))
    cv2.imwrite(str(lr / 'chelsea.png'), cv2.resize(clean, (32, 32), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(masks / 'chelsea.png'), np.zeros((128, 128), np.uint8))
    out = tmp_path / 'report'
    assert main(['report', '--out', str(out), '--lr', str(lr), '--mse', folders['mse'], '--gan', folders['a'],
                 '--masks', str(masks), '--fused', fused, '--tile-height', '128']) == 0
    page = (out / 'index.html').read_text()
    assert f'0: blue = {osp.abspath(folders["a"])}' in page and f'2: orange = {osp.abspath(folders["mse"])}' in page
    assert 'fused from source 0 blue' in page and 'source 1 green' in page
    grid = cv2.imread(str(out / 'grids' / 'chelsea.png'))
    assert grid.shape[1] == 7 * 128 + 6 * 4  # LR, MSE-SR, GAN-SR, mask, pseudo-GT, fused, fusion sources
    body = grid[CAPTION_HEIGHT:]
    fused_tile, sources_tile = body[:, 5 * 132:5 * 132 + 128], body[:, 6 * 132:]
    np.testing.assert_array_equal(fused_tile, cv2.imread(osp.join(fused, 'chelsea.png')))
    green = np.array(SOURCE_COLOURS[1][0])
    expected = np.round(0.5 * fused_tile[30, 30].astype(float) + 0.5 * green)
    np.testing.assert_allclose(sources_tile[30, 30], expected, atol=1)  # candidate a's artifact: from b (green)


def test_report_refuses_a_fused_folder_not_written_by_fuse(tmp_path, capsys):
    folders = _candidates(str(tmp_path), names=('chelsea', ))
    assert main(['report', '--out', str(tmp_path / 'r'), '--lr', folders['mse'], '--mse', folders['mse'], '--gan',
                 folders['a'], '--masks', folders['mse'], '--fused', folders['b']]) == 2
    assert 'not a folder written by desra fuse' in capsys.readouterr().err
    for sources in ([None, 3], 'ab'):  # a hand-edited summary.json: no traceback, no legend of single letters
        with open(osp.join(folders['b'], 'summary.json'), 'w') as f:
            json.dump({'meta': {'sources': sources}}, f)
        assert main(['report', '--out', str(tmp_path / 'r'), '--lr', folders['mse'], '--mse', folders['mse'],
                     '--gan', folders['a'], '--masks', folders['mse'], '--fused', folders['b']]) == 2
        assert 'not a list of folder names' in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize('nproc', [1, 2])
def test_localizer_train_under_torchrun_trains_on_every_rank(tmp_path, nproc):
    """CPU processes over gloo through mmengine's distributed launch (DDP without device ids), one process too (as
    on a one-GPU machine); rank 0 writes the files and the summary keeps its record."""
    import subprocess
    import sys

    import torch

    from helpers.paths import REPO_ROOT
    from helpers.training import train_env
    data = make_artifact_data(str(tmp_path / 'data'))
    out = str(tmp_path / 'loc')
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}', '-m',
        'desra_basicsr', 'localizer', 'train', '--gan', data['img'], '--masks', data['mask'], '--out', out, '--arch',
        'deeplabv3plus-r18', '--iters', '2', '--batch-size', '2', '--crop-size', '48', '--num-workers', '0'
    ]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=train_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = load(out)['items']['localizer']
    assert record['status'] == 'done' and record['iters'] == 2
    log = mmengine_log(out)
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert "type='MMDistributedDataParallel'" in log  # the CPU wrapper without device ids
    state = torch.load(osp.join(out, 'localizer.pth'), map_location='cpu', weights_only=True)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_localizer_train_with_clean_images(trained_localizer, tmp_path):
    data = trained_localizer['data']
    clean = tmp_path / 'clean'
    clean.mkdir()
    for name in ('chelsea', 'coffee'):
        cv2.imwrite(str(clean / f'{name}.png'), np.ascontiguousarray(skimage_photo_bgr(name)[:64, :64]))
    out = str(tmp_path / 'loc')
    args = ['localizer', 'train', '--gan', data['img'], '--masks', data['mask'], '--clean', str(clean), '--out', out,
            '--arch', 'segformer-mit-b0', '--iters', '1', '--batch-size', '2', '--crop-size', '48', '--num-workers',
            '0']
    assert main(args) == 0
    summary = load(out)
    assert summary['meta']['sources'][1] == {'kind': 'clean', 'path': str(clean), 'masks': None, 'weight': 1.0}
    assert summary['items']['localizer']['clean_images'] == 2
    assert main(args[:7] + [str(tmp_path / 'absent')] + args[8:] + ['--overwrite']) == 2  # --clean missing
