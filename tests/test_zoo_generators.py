"""The generator zoo: its option files train in BasicSR, and ``scripts/build_zoo.py`` builds its samples."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import cv2
import pytest
import torch
import yaml

from desra_basicsr.image_io import list_images
from helpers.paths import REPO_ROOT
from helpers.photos import make_paired_sr_data, skimage_photo_bgr
from helpers.training import experiment_dir, read_logs, run_train, train_env

ZOO_OPTIONS = sorted(glob.glob(osp.join(REPO_ROOT, 'options', 'zoo', '*.yml')))
BUILD_SCRIPT = osp.join(REPO_ROOT, 'scripts', 'build_zoo.py')
MSE_WEIGHTS = osp.join(REPO_ROOT, 'experiments', 'pretrained_models', 'demo_mse_x4.pth')
#: The zoo generator trained in the fast test: its U-Net discriminator takes small patches.
FAST = 'compact_unetd'


def zoo_name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def load(path: str) -> dict:
    with open(path, 'r') as f:
        return yaml.safe_load(f)


def tiny_run(opt: dict, data: dict, iters: int) -> dict:
    """A zoo option file made to train ``iters`` iterations on tiny pairs; everything else as shipped."""
    train = opt['datasets']['train']
    train.update(dataroot_gt=data['gt'], dataroot_lq=data['lq'], num_worker_per_gpu=0, batch_size_per_gpu=1,
                 dataset_enlarge_ratio=1)
    if opt['network_d']['type'] != 'VGGStyleDiscriminator':  # the VGG-style one takes 128 pixels only
        train['gt_size'] = 64
    if opt['path'].get('pretrain_network_g'):
        opt['path']['pretrain_network_g'] = osp.join(REPO_ROOT, opt['path']['pretrain_network_g'])
    opt['train']['total_iter'] = iters
    opt['logger'].update(print_freq=1, save_checkpoint_freq=iters)
    return opt


@pytest.fixture(scope='module')
def pairs_128(tmp_path_factory) -> dict:
    """Real-photo pairs with 128-pixel GT (the VGG-style discriminator's input size)."""
    return make_paired_sr_data(str(tmp_path_factory.mktemp('zoo_pairs')), gt_size=128)


def test_zoo_has_at_least_four_generators_that_differ():
    assert len(ZOO_OPTIONS) >= 4
    recipes = set()
    for path in ZOO_OPTIONS:
        opt = load(path)
        assert opt['name'] == f'zoo_{zoo_name(path)}_x4', path
        assert opt['datasets']['train']['dataroot_gt'] == 'datasets/demo/train/gt', path  # the training split only
        recipes.add(yaml.safe_dump({k: opt[k] for k in ('network_g', 'network_d', 'train')}))
    assert len(recipes) == len(ZOO_OPTIONS)
    assert {load(p)['network_g']['type'] for p in ZOO_OPTIONS} >= {'SRVGGNetCompact', 'RRDBNet'}
    assert {load(p)['network_d']['type'] for p in ZOO_OPTIONS} >= {'VGGStyleDiscriminator', 'UNetDiscriminatorSN'}


@pytest.mark.parametrize('path', ZOO_OPTIONS, ids=zoo_name)
def test_zoo_options_check_and_committed_weights_load(path):
    """train.py's checks accept each file as shipped, and its committed weights load strictly into its network."""
    from desra_basicsr.inference import build_generator
    from desra_basicsr.train import check_types, unknown_keys
    opt = load(path)
    check_types(opt, path)
    assert unknown_keys(opt) == ([], [])
    weights = osp.join(REPO_ROOT, 'experiments', 'pretrained_models', f'zoo_{zoo_name(path)}_x4.pth')
    kwargs = {k: v for k, v in opt['network_g'].items() if k != 'type'}
    net = build_generator(opt['network_g']['type'], kwargs, weights, 'params')
    with torch.no_grad():
        assert net(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)


def train_few(path: str, data: dict, cwd: str) -> None:
    opt = tiny_run(load(path), data, iters=2)
    run_train(opt, cwd)
    log = read_logs(cwd, opt)
    assert 'l_g_gan' in log and 'l_d_real' in log, log[-3000:]
    if opt['path'].get('pretrain_network_g'):
        assert 'Loading SRVGGNetCompact model from' in log and 'demo_mse_x4.pth' in log
    assert osp.isfile(osp.join(experiment_dir(cwd, opt), 'models', 'net_g_2.pth'))


def test_fast_zoo_generator_trains_two_iterations(pairs_128, tmp_path):
    train_few(osp.join(REPO_ROOT, 'options', 'zoo', f'{FAST}.yml'), pairs_128, str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize('path', [p for p in ZOO_OPTIONS if zoo_name(p) != FAST], ids=zoo_name)
def test_zoo_generator_trains_two_iterations(path, pairs_128, tmp_path):
    train_few(path, pairs_128, str(tmp_path))


def tiny_root(root: str, with_lr: bool = True) -> None:
    """A repository-shaped folder: one zoo option on tiny training pairs, the demo options and MSE-SR weights."""
    make_paired_sr_data(osp.join(root, 'datasets', 'demo', 'train'), gt_size=128)
    for split, names in (('finetune', ('chelsea', 'coffee')), ('heldout', ('astronaut', 'rocket'))):
        for name in names:
            hr = skimage_photo_bgr(name)[:128, :128]
            os.makedirs(osp.join(root, 'datasets', 'demo', 'hr'), exist_ok=True)
            cv2.imwrite(osp.join(root, 'datasets', 'demo', 'hr', f'{name}.png'), hr)
            if with_lr:
                os.makedirs(osp.join(root, 'demo_data', f'{split}_lr'), exist_ok=True)
                cv2.imwrite(osp.join(root, 'demo_data', f'{split}_lr', f'{name}.png'),
                            cv2.resize(hr, (32, 32), interpolation=cv2.INTER_AREA))
    os.makedirs(osp.join(root, 'options', 'zoo'))
    for name in ('demo_train_mse.yml', 'demo_train_gan.yml', 'demo_train_gan_b.yml'):
        shutil.copy(osp.join(REPO_ROOT, 'options', name), osp.join(root, 'options', name))
    opt = tiny_run(load(osp.join(REPO_ROOT, 'options', 'zoo', f'{FAST}.yml')),
                   {'gt': 'datasets/demo/train/gt', 'lq': 'datasets/demo/train/lq'}, iters=2)
    opt['path']['pretrain_network_g'] = 'experiments/pretrained_models/demo_mse_x4.pth'
    with open(osp.join(root, 'options', 'zoo', f'{FAST}.yml'), 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    os.makedirs(osp.join(root, 'experiments', 'pretrained_models'))
    shutil.copy(MSE_WEIGHTS, osp.join(root, 'experiments', 'pretrained_models'))


def build_zoo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, BUILD_SCRIPT, *args], env=train_env(), capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
def test_build_zoo_trains_writes_the_samples_layout_and_resumes(tmp_path):
    from desra_basicsr.jobs.zoo_samples import generator_samples
    root = str(tmp_path)
    tiny_root(root)
    first = build_zoo('--root', root, '--only', FAST)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f'training {FAST}' in first.stdout and 'skipping realesrgan_x4plus' in first.stdout
    weights = osp.join(root, 'experiments', 'pretrained_models', f'zoo_{FAST}_x4.pth')
    assert osp.isfile(weights)
    with open(osp.join(root, 'results', 'zoo', 'manifest.json')) as f:
        manifest = json.load(f)
    (entry, ) = manifest['generators']
    assert [entry[k] for k in ('name', 'class', 'family', 'weights')] == [FAST, FAST, 'SRVGGNetCompact', weights]
    for split, names in (('finetune', ['chelsea', 'coffee']), ('heldout', ['astronaut', 'rocket'])):
        folders = entry['splits'][split]
        assert folders['sr'] == osp.join(root, 'results', 'zoo', FAST, split, 'sr')
        assert folders['images'] == 2 and 0 <= folders['mean_area_percent'] <= 100
        samples = generator_samples(folders['sr'], folders['masks'], manifest['hr'], entry['class'])
        assert [osp.splitext(osp.basename(s.image))[0] for s in samples] == names
        assert all(s.cls == FAST and cv2.imread(s.image).shape == (128, 128, 3) for s in samples)

    trained_at = os.stat(weights).st_mtime_ns
    again = build_zoo('--root', root, '--only', FAST)
    assert again.returncode == 0, again.stdout + again.stderr
    assert 'training' not in again.stdout and os.stat(weights).st_mtime_ns == trained_at

    train = build_zoo('--root', root, '--only', FAST, '--splits', 'train')  # added, the other splits kept
    assert train.returncode == 0 and 'training' not in train.stdout, train.stdout + train.stderr
    with open(osp.join(root, 'results', 'zoo', 'manifest.json')) as f:
        manifest = json.load(f)
    splits = manifest['generators'][0]['splits']
    assert sorted(splits) == ['finetune', 'heldout', 'train'] and splits['finetune'] == entry['splits']['finetune']
    assert set(manifest['mse_reference']) >= {'finetune', 'heldout', 'train'}
    gt = osp.join(root, 'datasets', 'demo', 'train', 'gt')
    assert splits['train']['hr'] == gt and splits['train']['images'] == len(list_images(gt))
    samples = generator_samples(splits['train']['sr'], splits['train']['masks'], gt, FAST)
    assert [osp.basename(s.target) for s in samples] == list_images(gt)

    os.remove(weights)  # retrained: the outputs of the old weights are replaced, the other entries kept
    retrained = build_zoo('--root', root, '--only', FAST)
    assert retrained.returncode == 0 and f'training {FAST}' in retrained.stdout, retrained.stdout + retrained.stderr
    with open(osp.join(root, 'results', 'zoo', 'manifest.json')) as f:
        assert [g['name'] for g in json.load(f)['generators']] == [FAST]


def test_build_zoo_refuses_an_unknown_generator(tmp_path):
    proc = build_zoo('--only', 'no_such_gan', '--out', str(tmp_path / 'zoo'))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: --only no_such_gan: no such generator; choose from ')
    assert 'compact_unetd' in lines[0] and 'demo_gan_b' in lines[0]
    assert 'Traceback' not in proc.stderr and not osp.exists(tmp_path / 'zoo')


def test_build_zoo_refuses_a_root_without_the_lr_photos(tmp_path):
    tiny_root(str(tmp_path), with_lr=False)
    proc = build_zoo('--root', str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (f'error: {tmp_path}/demo_data/finetune_lr: the finetune LR photos are missing; '
                                   'run scripts/prepare_demo_data.py')
    assert not osp.exists(tmp_path / 'results') and not osp.exists(tmp_path / 'experiments' / 'zoo_compact_unetd_x4')
