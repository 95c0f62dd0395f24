"""``desra localizer train`` with unusable arguments: refused with exit 2 and one line before mmengine starts.

Every case runs the real command line and checks that ``--out`` was never created (no ``work_dir``, no mmengine
log). Also: a grey mask stored as RGB, which the package's mask rule accepts, trains.
"""
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from desra_basicsr.commands import main
from desra_basicsr.jobs import localizer_train as job
from desra_basicsr.localizer.dataset import artifact_fraction, balanced_artifact_weight
from helpers.localizer import make_artifact_data, mmengine_log, refused
from helpers.mmseg import mit_b0_config_path, random_checkpoint
from helpers.paths import REPO_ROOT
from helpers.training import train_env

#: Options that keep a refused run short if it were not refused (a tiny training on the CPU).
SMALL = ['--arch', 'segformer-mit-b0', '--iters', '1', '--batch-size', '2', '--crop-size', '48', '--num-workers', '0']


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_artifact_data(str(tmp_path_factory.mktemp('localizer_bad_inputs')))


def train_args(data, out, *extra):
    folders = ['--gan', data['img'], '--masks', data['mask'], '--out', str(out)]
    return ['localizer', 'train'] + folders + SMALL + list(extra)


@pytest.mark.parametrize('option, value, expected', [
    ('--lr', 'nan', '--lr nan: must be a finite number in (0, 1]'),
    ('--lr', '-1', '--lr -1.0: must be a finite number in (0, 1]'),
    ('--num-workers', '-1', '--num-workers -1: must be a finite number in [0, 64]'),
    ('--crop-size', '10000', '--crop-size 10000: must be a finite number in [32, 1024]'),
    ('--iters', '0', '--iters 0: must be'),
    ('--batch-size', '0', '--batch-size 0: must be'),
    ('--artifact-weight', 'inf', '--artifact-weight inf: must be a finite number in (0, 100]'),
    ('--seed', '-1', '--seed -1: must be'),
    ('--checkpoint-interval', '0', '--checkpoint-interval 0: must be'),
])
def test_numeric_options_are_refused_before_training(data, tmp_path, capsys, option, value, expected):
    out = tmp_path / 'out'
    refused(train_args(data, out, f'{option}={value}'), out, capsys, expected)


def test_deeplab_needs_two_images_per_batch(data, tmp_path, capsys):
    out = tmp_path / 'out'
    refused(train_args(data, out, '--arch', 'deeplabv3plus-r18', '--batch-size', '1'), out, capsys,
            '--batch-size 1: must be >= 2 for deeplabv3plus-r18')


class _RunsCode:
    """Unpickling this calls ``os.mkdir(path)``: what a crafted checkpoint could do, made visible."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path, )


def _init_checkpoints(folder):
    """Unusable ``--init-checkpoint`` files: name -> (path, what the message says)."""
    files = {}

    def add(name, expected, write):
        path = osp.join(folder, f'{name}.pth')
        write(path)
        files[name] = (path, expected)

    add('empty', 'checkpoint file is empty', lambda p: open(p, 'wb').close())
    add('noise', 'corrupt, or not written by torch.save',
        lambda p: open(p, 'wb').write(np.random.default_rng(0).bytes(4096)))
    state = {'state_dict': {'backbone.conv.weight': torch.zeros(8, 3, 3, 3), 'decode_head.conv.bias': torch.zeros(2)}}
    torch.save(state, osp.join(folder, 'whole.pth'))
    whole = open(osp.join(folder, 'whole.pth'), 'rb').read()
    add('truncated', 'truncated or corrupt', lambda p: open(p, 'wb').write(whole[:len(whole) // 2]))
    add('crafted', 'refused: it loads posix.mkdir',
        lambda p: torch.save({'state_dict': _RunsCode(osp.join(folder, 'pwned'))}, p))
    add('pickle', 'not a checkpoint of plain tensors',
        lambda p: open(p, 'wb').write(pickle.dumps(_RunsCode(osp.join(folder, 'pwned')))))
    add('list', 'holds a list, not a state dict', lambda p: torch.save([torch.zeros(1)], p))
    add('generator', 'not an mmseg segmentation checkpoint',  # a BasicSR SR generator: the wrong kind of weights
        lambda p: torch.save({'params_ema': {'conv_first.weight': torch.zeros(64, 3, 3, 3)}}, p))
    files['missing'] = (osp.join(folder, 'missing.pth'), 'checkpoint file not found')
    return files


def test_unusable_init_checkpoints_are_refused_safely(data, tmp_path, capsys):
    folder = tmp_path / 'checkpoints'
    folder.mkdir()
    for name, (path, expected) in _init_checkpoints(str(folder)).items():
        out = tmp_path / f'out_{name}'
        err = refused(train_args(data, out, '--init-checkpoint', path), out, capsys, '--init-checkpoint', path,
                      expected)
        assert len(err) < 400, err
    assert not osp.exists(folder / 'pwned')  # the crafted pickles never ran


def test_refusals_reach_the_terminal_without_a_traceback(data, tmp_path):
    """The console script in its own process: one line on stderr, exit 2, for a setting and an init checkpoint."""
    crafted = str(tmp_path / 'crafted.pth')
    torch.save({'state_dict': _RunsCode(str(tmp_path / 'pwned'))}, crafted)
    out = tmp_path / 'out'
    for extra, expected in ((['--crop-size', '10000'], '--crop-size 10000'),
                            (['--init-checkpoint', crafted], f'--init-checkpoint {crafted}: refused')):
        proc = subprocess.run([sys.executable, '-m', 'desra_basicsr'] + train_args(data, out, *extra), cwd=REPO_ROOT,
                              env=train_env(), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and expected in proc.stderr
        assert 'Traceback' not in proc.stderr and not osp.exists(out)
    assert not osp.exists(tmp_path / 'pwned')


def _bad_values(lo, hi, integer):
    """Values outside ``[lo, hi]`` as typed on a command line: NaN, infinities, below, above (far above too)."""
    below = st.integers(max_value=int(lo) - 1) if integer else st.floats(max_value=lo, exclude_max=False)
    above = st.integers(min_value=int(hi) + 1) if integer else st.floats(min_value=hi, exclude_min=True)
    special = st.sampled_from(['nan', 'inf', '-inf', '1e400', '-1e400'])
    return st.one_of(below.map(repr), above.map(repr), special)


#: Every numeric option: (flag, smallest and largest allowed value, integer).
NUMERIC_OPTIONS = [
    ('--lr', 0.0, 1.0, False),  # 0 itself is refused too (an open bound)
    ('--artifact-weight', 0.0, job.MAX_ARTIFACT_WEIGHT, False),
    ('--iters', 1, job.MAX_ITERS, True),
    ('--batch-size', 1, job.MAX_BATCH_SIZE, True),
    ('--crop-size', job.MIN_CROP_SIZE, job.MAX_CROP_SIZE, True),
    ('--num-workers', 0, job.MAX_NUM_WORKERS, True),
    ('--seed', 0, job.MAX_SEED, True),
    ('--checkpoint-interval', 1, job.MAX_ITERS, True),
    ('--cat-max-ratio', 0.0, 1.0, False),  # 0 itself is refused too
]


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(NUMERIC_OPTIONS).flatmap(lambda o: st.tuples(st.just(o[0]), _bad_values(*o[1:]))))
def test_every_numeric_option_refuses_values_out_of_range(data, tmp_path_factory, option_value):
    """NaN, infinities, negative and huge values of any numeric option: exit 2 naming it, nothing created."""
    option, value = option_value
    out = tmp_path_factory.mktemp('property') / 'out'
    start = time.time()
    try:
        code = main(train_args(data, out, f'{option}={value}'))
    except SystemExit as exit_:  # argparse: not an integer at all (nan, inf, 1e400)
        code = exit_.code
    assert code == 2 and not osp.exists(out)
    assert time.time() - start < 15


def test_a_grey_mask_stored_as_rgb_trains(data, tmp_path, capsys):
    """Masks as three equal channels (grey saved as RGB) follow the package's mask rule, as in every other command;
    a random mmseg checkpoint of another class count initialises the model."""
    masks = tmp_path / 'rgb_masks'
    masks.mkdir()
    for name in os.listdir(data['mask']):
        grey = cv2.imread(osp.join(data['mask'], name), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(masks / name), cv2.merge([grey, grey, grey]))
    init = random_checkpoint(mit_b0_config_path(), str(tmp_path / 'ade20k_random.pth'))
    out = tmp_path / 'out'
    args = ['localizer', 'train', '--gan', data['img'], '--masks', str(masks), '--out', str(out), '--init-checkpoint',
            init] + SMALL
    assert main(args) == 0, capsys.readouterr().err
    assert osp.isfile(out / 'localizer.pth') and osp.isfile(out / 'localizer_config.py')
    assert 'Load checkpoint from' in mmengine_log(str(out))
    with open(out / 'summary.json') as f:
        weight = json.load(f)['meta']['artifact_weight']
    grey = [osp.join(data['mask'], name) for name in sorted(os.listdir(data['mask']))]
    # the RGB masks read as the same labels as the grey ones
    assert weight == balanced_artifact_weight(artifact_fraction(grey))


def test_masks_in_the_alpha_channel_need_and_take_mask_channel(data, tmp_path, capsys):
    """Masks drawn as transparency (black, the mask in alpha) are refused pointing to ``--mask-channel``, as in every
    other command, and train with ``--mask-channel 3``: the checks, the class weight and mmseg's data loading all
    read the alpha channel."""
    masks = tmp_path / 'alpha_masks'
    masks.mkdir()
    for name in os.listdir(data['mask']):
        grey = cv2.imread(osp.join(data['mask'], name), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(masks / name), cv2.merge([np.zeros_like(grey)] * 3 + [grey]))
    out = tmp_path / 'out'
    args = ['localizer', 'train', '--gan', data['img'], '--masks', str(masks), '--out', str(out)] + SMALL
    refused(args, out, capsys, 'mask with transparency', '--mask-channel 3')
    assert main(args + ['--mask-channel', '3']) == 0, capsys.readouterr().err
    with open(out / 'summary.json') as f:
        meta = json.load(f)['meta']
    grey = [osp.join(data['mask'], name) for name in sorted(os.listdir(data['mask']))]
    assert meta['mask_channel'] == 3 and meta['artifact_weight'] == balanced_artifact_weight(artifact_fraction(grey))


def test_overwrite_leaves_the_work_dir_of_another_commands_folder(data, tmp_path, capsys):
    """``--overwrite`` discards the localiser's own ``work_dir`` only once the folder is found to be its own."""
    foreign = tmp_path / 'masks_out'
    assert main(['detect', '--mse', data['img'], '--gan', data['img'], '--out', str(foreign), '--min-area', '10']) == 0
    (foreign / 'work_dir').mkdir()
    (foreign / 'work_dir' / 'iter_500.pth').write_bytes(b'not ours')
    capsys.readouterr()
    assert main(train_args(data, foreign, '--overwrite')) == 2
    assert 'does not write into the folder of another command' in capsys.readouterr().err
    assert (foreign / 'work_dir' / 'iter_500.pth').read_bytes() == b'not ours'
