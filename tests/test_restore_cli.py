"""``desra restore train`` and ``desra restore`` through the real command line: training in pixel and latent space,
restoring blind / non-blind / guided, --masks, resume after a kill, and bad input (exit 2, one line, nothing
written)."""
import hashlib
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch

from desra_basicsr.commands import main
from desra_basicsr.restore.checkpoint import load_restorer
from helpers.paths import REPO_ROOT
from helpers.restore import write_autoencoder, write_options, write_synth_folder


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT, os.environ.get('PYTHONPATH', '')]))


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A tiny restorer trained for two iterations through ``desra restore train``, and its data."""
    root = tmp_path_factory.mktemp('restore')
    synth = str(root / 'zoo')
    write_synth_folder(synth, str(root / 'hr'), size=32)
    opt = write_options(str(root / 'opt.yml'), synth, iters=2)
    assert main(['restore', 'train', '-opt', opt, '--out', str(root / 'run'), '--device', 'cpu']) == 0
    return {'root': root, 'synth': synth, 'images': osp.join(synth, 'img'), 'masks': osp.join(synth, 'mask'),
            'checkpoint': str(root / 'run' / 'restorer.pth')}


def _restore(trained, out, *extra):
    return main(['restore', '--input', trained['images'], '--out', str(out), '--checkpoint', trained['checkpoint'],
                 '--steps', '2', '--device', 'cpu', *extra])


def test_training_writes_a_restorer_of_the_zoo_classes(trained):
    ckpt = torch.load(trained['checkpoint'], weights_only=True)
    assert ckpt['kind'] == 'desra-restorer' and ckpt['classes'] == ['noise', 'stripes']
    with open(trained['root'] / 'run' / 'summary.json') as f:
        record = json.load(f)['items']['restorer']
    assert record['iters'] == 2 and record['space'] == 'pixel' and record['samples'] == 4


def test_blind_and_guided_restoring_keep_sizes_and_are_deterministic_under_a_seed(trained, tmp_path):
    guided = ('--seed', '7', '--class', 'stripes', '--guidance', '2.5')
    for out, extra in (('blind', ()), ('a', guided), ('b', guided)):
        assert _restore(trained, tmp_path / out, *extra) == 0
    for name in os.listdir(trained['images']):
        blind, a, b = (cv2.imread(str(tmp_path / out / name)) for out in ('blind', 'a', 'b'))
        assert blind.shape == a.shape == cv2.imread(osp.join(trained['images'], name)).shape
        assert (a == b).all() and (a != blind).any()


def test_masks_leave_every_pixel_outside_unchanged(trained, tmp_path):
    assert _restore(trained, tmp_path / 'out', '--masks', trained['masks'], '--feather', '3') == 0
    changed = 0
    for name in os.listdir(trained['images']):
        image = cv2.imread(osp.join(trained['images'], name))
        mask = cv2.imread(osp.join(trained['masks'], name), cv2.IMREAD_GRAYSCALE) > 127
        out = cv2.imread(str(tmp_path / 'out' / name))
        assert (out[~mask] == image[~mask]).all()
        changed += int((out[mask] != image[mask]).any())
    assert changed


def test_outside_applies_the_whole_image_restoration_at_its_strength_outside_the_masks(trained, tmp_path):
    from desra_basicsr.restore.masking import blend_weights, composite
    for out, extra in (('whole', ()), ('half', ('--masks', trained['masks'], '--outside', '0.5')),
                       ('full', ('--masks', trained['masks'], '--outside', '1'))):
        assert _restore(trained, tmp_path / out, '--feather', '3', *extra) == 0
    with open(tmp_path / 'half' / 'summary.json') as f:
        assert json.load(f)['meta']['outside'] == 0.5
    for name in os.listdir(trained['images']):
        image = cv2.imread(osp.join(trained['images'], name))
        mask = cv2.imread(osp.join(trained['masks'], name), cv2.IMREAD_GRAYSCALE) > 127
        whole, half, full = (cv2.imread(str(tmp_path / out / name)) for out in ('whole', 'half', 'full'))
        assert (full == whole).all()  # strength 1: the whole-image restoration, the same noise
        assert (half == composite(image, whole, blend_weights(mask, 3, 0.5))).all()
        assert (half[~mask] != image[~mask]).any() and (half[~mask] != whole[~mask]).any()


def test_passes_restore_the_inside_of_the_masks_again_on_the_last_output(trained, tmp_path):
    masked = ('--masks', trained['masks'], '--feather', '3', '--seed', '5')
    assert _restore(trained, tmp_path / 'once', *masked, '--outside', '0.5') == 0
    assert _restore(trained, tmp_path / 'twice', *masked, '--outside', '0.5', '--passes', '2') == 0
    # The second pass by hand: the masked restoration of the first pass's output, the same seed.
    assert main(['restore', '--input', str(tmp_path / 'once'), '--out', str(tmp_path / 'again'), '--checkpoint',
                 trained['checkpoint'], '--steps', '2', '--device', 'cpu', *masked]) == 0
    with open(tmp_path / 'twice' / 'summary.json') as f:
        assert json.load(f)['meta']['passes'] == 2
    for name in os.listdir(trained['images']):
        mask = cv2.imread(osp.join(trained['masks'], name), cv2.IMREAD_GRAYSCALE) > 127
        once, twice, again = (cv2.imread(str(tmp_path / out / name)) for out in ('once', 'twice', 'again'))
        assert (twice == again).all() and (twice[~mask] == once[~mask]).all()  # outside applied once
        assert (twice[mask] != once[mask]).any()


def test_latent_space_trains_and_restores(trained, tmp_path):
    vae = write_autoencoder(str(tmp_path / 'vae'))
    opt = write_options(str(tmp_path / 'opt.yml'), trained['synth'], autoencoder=vae)
    assert main(['restore', 'train', '-opt', opt, '--out', str(tmp_path / 'run'), '--device', 'cpu']) == 0
    ckpt = str(tmp_path / 'run' / 'restorer.pth')
    restorer = load_restorer(ckpt, torch.device('cpu'))
    assert restorer.config.autoencoder == vae and restorer.latent_factor == 2
    assert restorer.unet.config.in_channels == 8 and restorer.unet.config.out_channels == 4
    assert main(['restore', '--input', trained['images'], '--out', str(tmp_path / 'out'), '--checkpoint', ckpt,
                 '--steps', '2', '--device', 'cpu', '--class', 'noise']) == 0
    assert len(os.listdir(tmp_path / 'out')) == 5


def test_the_regression_baseline_trains_and_restores_in_one_pass(trained, tmp_path):
    opt = write_options(str(tmp_path / 'opt.yml'), trained['synth'], objective='regression', iters=2)
    assert main(['restore', 'train', '-opt', opt, '--out', str(tmp_path / 'run'), '--device', 'cpu']) == 0
    ckpt = str(tmp_path / 'run' / 'restorer.pth')
    restorer = load_restorer(ckpt, torch.device('cpu'))
    assert restorer.config.objective == 'regression' and restorer.unet.config.in_channels == 3
    for out, steps, seed in (('a', '2', '0'), ('b', '5', '9')):
        assert main(['restore', '--input', trained['images'], '--out', str(tmp_path / out), '--checkpoint', ckpt,
                     '--steps', steps, '--seed', seed, '--device', 'cpu']) == 0
    for name in os.listdir(trained['images']):
        a, b = (cv2.imread(str(tmp_path / out / name)) for out in ('a', 'b'))
        assert a.shape == cv2.imread(osp.join(trained['images'], name)).shape and (a == b).all()


def test_training_continues_from_the_latest_checkpoint(trained, tmp_path):
    from desra_basicsr.jobs.restore_train import read_options
    from desra_basicsr.restore.training import train_restorer
    options, _ = read_options(write_options(str(tmp_path / 'opt.yml'), trained['synth'], iters=2))
    first = train_restorer(options, str(tmp_path), torch.device('cpu'), progress=False)
    (tmp_path / 'checkpoints' / '.desra-tmp-k1lled00.pth').write_bytes(b'half a checkpoint')  # a killed save
    second = train_restorer(options.replace(iters=3), str(tmp_path), torch.device('cpu'), progress=False)
    assert first['resumed_from'] is None and second['resumed_from'] == 2
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['iter_0000002.pth', 'iter_0000003.pth']


def test_a_resumed_training_reports_the_final_loss_of_an_uninterrupted_one(trained, tmp_path):
    from desra_basicsr.jobs.restore_train import read_options
    from desra_basicsr.restore.training import checkpoint_path, train_restorer
    options, _ = read_options(write_options(str(tmp_path / 'opt.yml'), trained['synth'], iters=3))
    cpu, whole, resumed = torch.device('cpu'), str(tmp_path / 'whole'), str(tmp_path / 'resumed')
    uninterrupted = train_restorer(options, whole, cpu, progress=False)
    first = train_restorer(options.replace(iters=2), resumed, cpu, progress=False)
    again = train_restorer(options.replace(iters=2), resumed, cpu, progress=False)  # resumed at its last iteration
    second = train_restorer(options, resumed, cpu, progress=False)
    assert again['resumed_from'] == 2 and again['final_loss'] == first['final_loss']
    assert second['resumed_from'] == 2 and second['final_loss'] == pytest.approx(uninterrupted['final_loss'])
    # A checkpoint of an older version, without the losses, still resumes.
    old = torch.load(checkpoint_path(resumed, 3), weights_only=True)
    del old['losses']
    torch.save(old, checkpoint_path(resumed, 3))
    third = train_restorer(options.replace(iters=4), resumed, cpu, progress=False)
    assert third['resumed_from'] == 3 and third['final_loss'] is not None


def test_overwrite_discards_only_the_checkpoints_of_a_folder_of_this_command(trained, tmp_path, capsys):
    opt = write_options(str(tmp_path / 'opt.yml'), trained['synth'], iters=2)
    foreign = tmp_path / 'restored'
    assert _restore(trained, foreign) == 0
    os.makedirs(foreign / 'checkpoints')
    (foreign / 'checkpoints' / 'iter_0000001.pth').write_bytes(b'not ours')
    capsys.readouterr()
    assert main(['restore', 'train', '-opt', opt, '--out', str(foreign), '--device', 'cpu', '--overwrite']) == 2
    err = capsys.readouterr().err
    assert 'holds the outputs of `desra restore`' in err and '`desra restore train` does not write' in err
    assert (foreign / 'checkpoints' / 'iter_0000001.pth').read_bytes() == b'not ours'
    run = tmp_path / 'run'
    assert main(['restore', 'train', '-opt', opt, '--out', str(run), '--device', 'cpu']) == 0
    fewer = write_options(str(tmp_path / 'fewer.yml'), trained['synth'], iters=1)
    assert main(['restore', 'train', '-opt', fewer, '--out', str(run), '--device', 'cpu', '--overwrite']) == 0
    with open(run / 'summary.json') as f:
        summary = json.load(f)
    assert summary['meta']['command'] == 'restore train'
    assert summary['items']['restorer']['resumed_from'] is None and summary['items']['restorer']['iters'] == 1
    assert os.listdir(run / 'checkpoints') == ['iter_0000001.pth']


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_checkpoint(trained, tmp_path):
    opt = write_options(str(tmp_path / 'opt.yml'), trained['synth'], iters=20, checkpoint_every=2)
    out = tmp_path / 'run'
    cmd = [sys.executable, '-m', 'desra_basicsr', 'restore', 'train', '-opt', opt, '--out', str(out), '--device',
           'cpu']
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / 'checkpoints' / 'iter_0000002.pth').exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / 'restorer.pth').exists()
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with open(out / 'summary.json') as f:
        record = json.load(f)['items']['restorer']
    assert record['resumed_from'] >= 2 and record['iters'] == 20
    assert sorted(os.listdir(out / 'checkpoints')) == ['iter_0000018.pth', 'iter_0000020.pth']


@pytest.mark.parametrize('extra, option', [
    (('--class', 'cat'), '--class cat'),
    (('--class', 'noise', '--guidance', '0.5'), '--guidance 0.5'),
    (('--guidance', '2'), '--guidance 2'),
    (('--class', '[MASK]', '--guidance', '3'), '--guidance 3'),
    (('--steps', '0'), '--steps 0'),
    (('--steps', '51'), '--steps 51'),
    (('--tile', '33'), '--tile 33'),
    (('--outside', '0.5'), '--outside 0.5'),
    (('--outside', '1.5'), '--outside 1.5'),
    (('--passes', '2'), '--passes 2'),
    (('--masks', 'MASKS', '--passes', '0'), '--passes 0'),
])
def test_bad_restore_options_exit_2_and_write_nothing(trained, tmp_path, capsys, extra, option):
    extra = [trained['masks'] if arg == 'MASKS' else arg for arg in extra]
    assert _restore(trained, tmp_path / 'out', *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f'error: {option}') and len(err.splitlines()) == 1
    assert not (tmp_path / 'out').exists()


def test_a_checkpoint_of_another_kind_and_an_empty_folder_exit_2(trained, tmp_path, capsys):
    basicsr = str(tmp_path / 'net_g.pth')
    torch.save({'params': {'conv.weight': torch.zeros(1)}}, basicsr)
    code = main(['restore', '--input', trained['images'], '--out', str(tmp_path / 'out'), '--checkpoint', basicsr])
    err = capsys.readouterr().err.strip()
    assert code == 2 and 'not a desra restorer checkpoint' in err and basicsr in err and len(err.splitlines()) == 1
    os.makedirs(tmp_path / 'empty')
    code = main(['restore', '--input', str(tmp_path / 'empty'), '--out', str(tmp_path / 'out'), '--checkpoint',
                 trained['checkpoint']])
    err = capsys.readouterr().err.strip()
    assert code == 2 and 'holds no image' in err and len(err.splitlines()) == 1
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('old, new, problem', [
    ('iters:', 'iter:', 'train.iter: unknown key'),
    ('batch_size: 2', 'batch_size: -1', 'train.batch_size -1'),
    ('crop_size: 32', 'crop_size: 33', 'train.crop_size 33'),
    ('- 8', '- 7', 'model.block_out_channels'),
    ('name: tiny', 'name: tiny\nloss: l1', 'loss: unknown key'),
    ('train_timesteps: 50', 'train_timesteps: 50\n  prediction: x0', 'diffusion.prediction'),
    ('train_timesteps: 50', 'train_timesteps: 50\n  beta_schedule: cosine', 'diffusion.beta_schedule cosine'),
    ('seed: 0', 'seed: 0\n  mixed_precision: fp8', 'train.mixed_precision fp8'),
    ('seed: 0', 'seed: 0\n  lr: 1e-4x', "train.lr '1e-4x': give a number"),
    ('seed: 0', 'seed: 0\n  lr: true', 'train.lr True: give a number'),
    ('iters: 1', 'iters: 2.5', 'train.iters 2.5: give a whole number'),
    ('iters: 1', 'iters: ~', 'train.iters None: give a whole number'),
    ('crop_size: 32', "crop_size: '32'", "train.crop_size '32': give a whole number"),
    ('layers_per_block: 1', 'layers_per_block: 1\n  attention: 3', 'model.attention 3: give true or false'),
])
def test_bad_option_files_exit_2_and_write_nothing(trained, tmp_path, capsys, old, new, problem):
    opt = write_options(str(tmp_path / 'opt.yml'), trained['synth'])
    with open(opt) as f:
        text = f.read()
    assert old in text
    with open(opt, 'w') as f:
        f.write(text.replace(old, new, 1))
    assert main(['restore', 'train', '-opt', opt, '--out', str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f'error: {opt}: {problem}') and len(err.splitlines()) == 1
    assert not (tmp_path / 'out').exists()


def test_option_values_take_the_types_of_their_fields(trained, tmp_path):
    """YAML reads ``1e-4`` (no dot) as a string: a float field takes it as the number."""
    from desra_basicsr.jobs.restore_train import read_options
    options, _ = read_options(write_options(str(tmp_path / 'opt.yml'), trained['synth'], lr='1e-4', weight_decay=0,
                                            ema_decay=None))
    assert options.lr == 1e-4 and options.weight_decay == 0 and options.ema_decay is None


def test_restore_without_its_folders_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['restore', '--out', 'x'])
    assert exit_info.value.code == 2 and '--input required' in capsys.readouterr().err


def test_the_demo_option_files_parse():
    import yaml
    opts = {}
    for name in ('demo', 'demo_regression', 'zoo', 'diffgar'):
        with open(osp.join(REPO_ROOT, 'options', 'restore', f'{name}.yml')) as f:
            opts[name] = yaml.safe_load(f)
        assert set(opts[name]) == {'name', 'data', 'model', 'diffusion', 'train'}
    classes = {generator['class'] for generator in opts['zoo']['data']['generators']}
    assert len(classes) == 6 and 'compact_unetd' not in classes  # the benchmark's never-seen generator
    diffgar = opts['diffgar']
    assert diffgar['train']['crop_size'] == 256 and diffgar['train']['batch_size'] == 24
    assert diffgar['diffusion']['train_timesteps'] == 1000 and np.isclose(diffgar['diffusion']['mask_probability'], 0.5)


def test_the_committed_demo_restorer_is_the_default_checkpoint(trained, tmp_path):
    """``desra restore`` runs out of the box: no --checkpoint, the demo restorer trained by the project."""
    from desra_basicsr.jobs.restore import DEMO_RESTORER
    out = tmp_path / 'out'
    assert main(['restore', '--input', trained['images'], '--masks', trained['masks'], '--out', str(out), '--steps',
                 '2', '--device', 'cpu']) == 0
    with open(out / 'summary.json') as f:
        meta = json.load(f)['meta']
    with open(DEMO_RESTORER, 'rb') as f:
        assert meta['weights_sha256']['checkpoint'] == hashlib.sha256(f.read()).hexdigest()
    restorer = load_restorer(DEMO_RESTORER, torch.device('cpu'))
    assert 'demo_gan' in restorer.config.classes and restorer.config.objective == 'diffusion'
    for name in os.listdir(trained['images']):
        assert cv2.imread(str(out / name)).shape == cv2.imread(osp.join(trained['images'], name)).shape
