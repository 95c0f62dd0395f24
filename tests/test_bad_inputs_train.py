"""Bad inputs of ``desra_basicsr/train.py``: one ``error:`` line, exit 2 (unusable options, missing inputs) or 1 (an
input failed), no traceback, and BasicSR's log kept where the run got far enough to create it."""
import glob
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.train import check_files, drop_idle_persistent_workers, unknown_keys, user_error
from helpers.finetune import TINY_OPTIONS, load_options, make_tiny_data, save_weights
from helpers.paths import REPO_ROOT, TRAIN_SCRIPT
from helpers.training import experiment_dir, latest_state_iter, read_logs, run_train, train_env


def tiny_options() -> dict:
    """The tiny Real-ESRGAN fine-tune twin, 2 iterations, without the perceptual loss (no VGG19 file needed)."""
    opt = load_options(TINY_OPTIONS['realesrgan'])
    opt['train'].pop('perceptual_opt')
    opt['train']['total_iter'] = 2
    return opt


@pytest.fixture
def cwd(tmp_path):
    """A working directory with the tiny twin's data and weights."""
    make_tiny_data(str(tmp_path))
    save_weights(tiny_options(), str(tmp_path))
    return str(tmp_path)


def the_error(proc: subprocess.CompletedProcess, code: int) -> str:
    """The run's one ``error:`` line, after checking its exit code and that no traceback was printed."""
    assert proc.returncode == code, proc.stdout[-4000:]
    assert 'Traceback' not in proc.stdout, proc.stdout[-4000:]
    errors = [line for line in proc.stdout.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1, proc.stdout[-4000:]
    return errors[0]


def train_main(argv, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TRAIN_SCRIPT] + argv, cwd=cwd, env=train_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)


def test_missing_option_file(tmp_path):
    error = the_error(train_main(['-opt', 'nowhere.yml'], str(tmp_path)), 2)
    assert error.startswith('error: nowhere.yml: option file not found (-opt)')
    assert not osp.exists(tmp_path / 'experiments')


def test_broken_option_file(tmp_path):
    (tmp_path / 'broken.yml').write_text('name: x\ndatasets: [train\nscale: 4\n')
    error = the_error(train_main(['-opt', 'broken.yml'], str(tmp_path)), 2)
    assert error.startswith('error: broken.yml: not a valid YAML file at line ')
    assert not osp.exists(tmp_path / 'experiments')


def _set(opt: dict, dotted: str, value) -> None:
    *parents, key = dotted.split('.')
    for parent in parents:
        opt = opt[parent]
    opt[key] = value


# case -> (option changes, fragments of the error line)
BEFORE_THE_RUN = {
    'model_type': ({'model_type': 'DeSRAFinetuneModl'}, ["model_type: 'DeSRAFinetuneModl'", 'DeSRAFinetuneModel?']),
    'network_type': ({'network_g.type': 'RRDBNett'}, ["network_g.type: 'RRDBNett' is not a registered", 'RRDBNet']),
    'loss_type': ({'train.pixel_opt.type': 'L1Los'}, ["train.pixel_opt.type: 'L1Los'", 'L1Loss']),
    'pretrain_g': ({'path.pretrain_network_g': 'experiments/pretrained_models/gone_g.pth'},
                   ['gone_g.pth: pretrained network_g file not found (path.pretrain_network_g)']),
    'pretrain_d': ({'path.pretrain_network_d': 'experiments/pretrained_models/gone_d.pth'},
                   ['gone_d.pth: pretrained network_d file not found (path.pretrain_network_d)']),
    'vgg19': ({'train.perceptual_opt': {'type': 'PerceptualLoss', 'layer_weights': {'conv5_4': 1}}},
              ['experiments/pretrained_models/vgg19-dcbb9e9d.pth: VGG19 weights', 'download.pytorch.org']),
    'data_folder': ({'datasets.train.dataroot_mask': 'datasets/desra_tiny/train/masks'},
                    ['train/masks: not found (datasets.train.dataroot_mask)']),
    'transform_key': ({'datasets.train.transform.dialte': 2},
                      ['datasets.train.transform.dialte: unknown key; did you mean dilate?']),
}


@pytest.mark.parametrize('case', sorted(BEFORE_THE_RUN))
def test_option_errors_stop_before_the_experiment_folder(cwd, case):
    changes, fragments = BEFORE_THE_RUN[case]
    opt = tiny_options()
    for dotted, value in changes.items():
        _set(opt, dotted, value)
    error = the_error(run_train(opt, cwd, check=False, timeout=300), 2)
    for fragment in fragments:
        assert fragment in error, error
    assert '(log: ' not in error
    assert not osp.exists(experiment_dir(cwd, opt))


def _break_data(cwd: str, case: str) -> None:
    train = osp.join(cwd, 'datasets', 'desra_tiny', 'train')
    if case == 'missing_mask':
        os.remove(osp.join(train, 'mask', 'chelsea.png'))
    elif case == 'mismatched_pair':
        lq = cv2.imread(osp.join(train, 'lq', 'coffee.png'))
        cv2.imwrite(osp.join(train, 'lq', 'coffee.png'), lq[:15, :15])
    elif case == 'red_mask':
        mask = cv2.imread(osp.join(train, 'mask', 'astronaut.png'), cv2.IMREAD_GRAYSCALE)
        red = np.zeros(mask.shape + (3, ), np.uint8)
        red[:, :, 2] = mask  # BGR: red channel only
        cv2.imwrite(osp.join(train, 'mask', 'astronaut.png'), red)


# case -> (exit code, fragments of the error line, text that must not be in it)
DATA_ERRORS = {
    'missing_mask': (2, ['gan/chelsea.png: no partner named chelsea.*', '(datasets.train.dataroot_mask)'], None),
    'mismatched_pair': (1, ['mse/coffee.png: size 64x64 does not match LR', 'lq/coffee.png (15x15)'], None),
    'red_mask': (1, ['mask/astronaut.png: colour mask', '(datasets.train.mask_channel)'], '--mask-channel'),
}


@pytest.mark.parametrize('case', sorted(DATA_ERRORS))
def test_data_errors_name_the_file_and_keep_the_log(cwd, case):
    code, fragments, absent = DATA_ERRORS[case]
    opt = tiny_options()
    opt['train']['tf23'] = True
    _break_data(cwd, case)
    proc = run_train(opt, cwd, check=False, timeout=300)
    error = the_error(proc, code)
    for fragment in fragments:
        assert fragment in error, error
    if absent:
        assert absent not in error
    assert 'warning: train.tf23: unknown key, ignored; did you mean tf32?' in proc.stdout
    logs = glob.glob(osp.join(experiment_dir(cwd, opt), 'train_*.log'))
    assert len(logs) == 1 and error.endswith(f'(log: {logs[0]})'), error
    assert fragments[0] in read_logs(cwd, opt)  # the log ends with the error
    assert 'Start training' not in proc.stdout


def test_persistent_workers_without_workers_is_dropped_and_training_runs(cwd):
    """The shipped options keep loader workers alive; edited to ``num_worker_per_gpu: 0`` they still train."""
    opt = tiny_options()
    opt['datasets']['train'].update(num_worker_per_gpu=0, persistent_workers=True)
    opt['datasets']['val']['persistent_workers'] = True
    opt['val']['val_freq'] = 2
    proc = run_train(opt, cwd, timeout=300)
    assert 'notice: datasets.train.persistent_workers: ignored, num_worker_per_gpu is 0' in proc.stdout
    assert 'notice: datasets.val.persistent_workers: ignored' in proc.stdout
    assert 'warning:' not in proc.stdout and 'Traceback' not in proc.stdout
    assert latest_state_iter(cwd, opt) == 2


# ----------------------------------------------------------------------------------------------- in-process parts
def test_unknown_keys_of_the_plugin_blocks_only():
    opt = tiny_options()
    opt['datasets']['train']['gt_sise'] = 32
    opt['datasets']['train']['transform']['feathr'] = 1
    opt['train']['mask_pixel_opts'] = None
    opt['val']['metrics']['desra_artifact_ratio']['treshold'] = 0.5
    opt['val']['metrics']['psnr']['anything'] = 1  # BasicSR's metric: not the plugin's block
    opt['network_g']['whatever'] = 1  # not the plugin's block
    errors, warnings = unknown_keys(opt)
    assert errors == ['datasets.train.transform.feathr: unknown key; did you mean feather?']
    assert warnings == [
        'datasets.train.gt_sise: unknown key, ignored; did you mean gt_size?',
        'train.mask_pixel_opts: unknown key, ignored; did you mean mask_pixel_opt?',
        'val.metrics.desra_artifact_ratio.treshold: unknown key, ignored; did you mean threshold?',
    ]
    assert unknown_keys(tiny_options()) == ([], [])
    shipped = glob.glob(osp.join(REPO_ROOT, 'options', '*.yml')) + list(TINY_OPTIONS.values())
    for path in shipped:
        assert unknown_keys(load_options(path)) == ([], []), path


def test_persistent_workers_kept_where_workers_run():
    opt = tiny_options()
    opt['datasets']['train'].update(num_worker_per_gpu=2, persistent_workers=True)
    assert drop_idle_persistent_workers(opt) == []
    assert opt['datasets']['train']['persistent_workers'] is True


def test_user_errors_are_mapped_and_bugs_are_not(cwd):
    opt_path = osp.join(cwd, 'o.yml')
    with open(opt_path, 'w') as f:
        f.write('name: x\npath:\n  pretrain_network_g: experiments/g.pth\n')
    assert user_error(DesraSettingsError('a: b'), opt_path) == (2, 'a: b')
    missing = FileNotFoundError(2, 'No such file or directory', 'experiments/g.pth')
    assert user_error(missing, opt_path) == (
        2, f'{osp.abspath("experiments/g.pth")}: not found (path.pretrain_network_g); put it there or correct it')
    registry = KeyError("No object named 'L1Los' found in 'loss' registry!")
    assert user_error(registry, opt_path) == (
        2, f"{opt_path}: No object named 'L1Los' found in 'loss' registry; correct the type in the option file")
    assert user_error(FileNotFoundError(2, 'No such file or directory', 'other.pth'), opt_path) is None
    assert user_error(KeyError('params'), opt_path) is None
    assert user_error(RuntimeError('internal'), opt_path) is None


def test_resuming_needs_no_pretrained_files(cwd, monkeypatch):
    """BasicSR resumes from the experiment's own networks: deleted pretrained files do not stop a resume."""
    monkeypatch.chdir(cwd)
    opt = tiny_options()
    opt['auto_resume'] = False
    os.remove(opt['path']['pretrain_network_g'])
    with pytest.raises(DesraSettingsError, match=r'pretrained network_g file not found \(path\.pretrain_network_g\)'):
        check_files(opt)
    opt['path']['resume_state'] = 'experiments/x/training_states/2.state'
    with pytest.raises(DesraSettingsError, match=r'2\.state: training state not found \(path\.resume_state\)'):
        check_files(opt)
    os.makedirs('experiments/x/training_states')
    open(opt['path']['resume_state'], 'wb').close()
    check_files(opt)


def test_in_process_training_leaves_no_backend_for_later_runs(cwd, monkeypatch):
    """The option file's dist backend reaches this run's init_dist only: a later run (or a process started later,
    which inherits the environment) must not train with it, e.g. gloo where its own option file asks for nccl."""
    import yaml

    from desra_basicsr.compat import DIST_BACKEND_ENV
    from desra_basicsr.train import train_checked
    monkeypatch.delenv(DIST_BACKEND_ENV, raising=False)
    opt = tiny_options()
    opt['dist_params'] = {'backend': 'gloo'}
    for key in ('dataroot_lq', 'dataroot_mse', 'dataroot_gan', 'dataroot_mask'):  # refused before training starts
        opt['datasets']['train'][key] = osp.join(cwd, 'absent', key)
    path = osp.join(cwd, 'options.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    argv = sys.argv[:]
    with pytest.raises(DesraSettingsError, match='not found'):
        train_checked(cwd, ['-opt', path])
    assert DIST_BACKEND_ENV not in os.environ
    assert sys.argv == argv
