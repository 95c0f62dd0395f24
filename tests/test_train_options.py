"""``desra_basicsr/train.py`` before BasicSR touches the experiment folder: required keys, DiffGAR option files,
network arguments, a resumed run whose options changed, an unreadable training state, ``--force_yml``."""
import copy
import glob
import os
import os.path as osp
import pickle

import pytest
import torch
import yaml

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.train import (apply_force_yml, check_network_keys, check_required_keys, check_resume_options,
                                 check_types, checked_state_loader, force_yml_entries, prepare_argv, read_option_file,
                                 trained_options)
from helpers.finetune import TINY_OPTIONS, make_tiny_data, save_weights
from helpers.paths import REPO_ROOT
from helpers.training import experiment_dir, latest_state_iter, run_train
from test_bad_inputs_train import the_error, tiny_options, train_main

MSE_OPTIONS = osp.join(REPO_ROOT, 'options', 'demo_train_mse.yml')
RESTORE_OPTIONS = sorted(glob.glob(osp.join(REPO_ROOT, 'options', 'restore', '*.yml')))
SHIPPED = sorted(glob.glob(osp.join(REPO_ROOT, 'options', '*.yml')) + glob.glob(osp.join(REPO_ROOT, 'options', 'zoo',
                                                                                         '*.yml')) +
                 glob.glob(osp.join(REPO_ROOT, 'options', 'derain', '*.yml')) + list(TINY_OPTIONS.values()))


def _without(opt: dict, dotted: str) -> dict:
    opt = copy.deepcopy(opt)
    *parents, key = dotted.split('.')
    node = opt
    for parent in parents:
        node = node[parent]
    del node[key]
    return opt


def write_yaml(path: str, opt: dict, header: str = '') -> str:
    with open(path, 'w') as f:
        f.write(header)
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


# ------------------------------------------------------------------------------------------------- required keys
@pytest.mark.parametrize('path', SHIPPED, ids=lambda p: osp.relpath(p, REPO_ROOT))
def test_shipped_option_files_have_the_required_keys_and_network_arguments(path):
    opt = read_option_file(path)
    check_required_keys(opt, path)
    check_types(opt, path)
    check_network_keys(opt, path)


@pytest.mark.parametrize('path', RESTORE_OPTIONS, ids=osp.basename)
def test_restore_option_files_name_their_command(path):
    with pytest.raises(DesraSettingsError) as info:
        check_required_keys(read_option_file(path), path)
    assert str(info.value) == (f'{path}: a DiffGAR restorer option file (top-level data: and model:), not a BasicSR '
                               f'one; train it with: desra restore train -opt {path} --out FOLDER')


@pytest.mark.parametrize('dotted', ['name', 'num_gpu', 'path', 'datasets', 'train', 'network_g', 'scale',
                                    'model_type', 'logger', 'datasets.train', 'train.total_iter', 'train.optim_g',
                                    'train.scheduler', 'logger.print_freq', 'datasets.train.io_backend',
                                    'datasets.train.gt_size', 'datasets.train.batch_size_per_gpu'])
def test_a_missing_required_key_is_named(dotted):
    opt = _without(read_option_file(MSE_OPTIONS), dotted)
    with pytest.raises(DesraSettingsError, match=rf'demo_train_mse\.yml: {dotted} is missing; '):
        check_required_keys(opt, MSE_OPTIONS)


def test_gan_keys_and_dataset_phases():
    opt = read_option_file(osp.join(REPO_ROOT, 'options', 'zoo', 'compact_unetd.yml'))
    assert opt['model_type'] == 'SRGANModel'
    with pytest.raises(DesraSettingsError, match=r'train\.optim_d is missing; SRGANModel trains a discriminator'):
        check_required_keys(_without(opt, 'train.optim_d'), 'o.yml')
    opt['datasets']['test'] = opt['datasets']['train']
    with pytest.raises(DesraSettingsError, match=r'datasets\.test: not a dataset phase BasicSR knows'):
        check_required_keys(opt, 'o.yml')


def test_network_arguments_are_checked_against_the_architecture():
    opt = read_option_file(MSE_OPTIONS)
    opt['network_g']['num_featt'] = opt['network_g'].pop('num_feat')
    with pytest.raises(DesraSettingsError) as info:
        check_network_keys(opt, 'o.yml')
    assert str(info.value) == 'o.yml: network_g.num_featt: not an argument of SRVGGNetCompact; did you mean num_feat?'


def test_type_hint_names_what_users_write():
    opt = read_option_file(MSE_OPTIONS)
    opt['network_g']['type'] = 'SRVGGNetCompactt'
    with pytest.raises(DesraSettingsError) as info:
        check_types(opt, 'o.yml')
    assert 'did you mean SRVGGNetCompact?' in str(info.value) and '_basicsr' not in str(info.value)


@pytest.mark.parametrize('case', ['restore', 'no_num_gpu', 'no_io_backend', 'no_gt_size', 'num_featt'])
def test_bad_options_stop_before_any_folder_is_touched(tmp_path, case):
    """One error line, exit 2, and the previous run of the same name is neither archived nor changed."""
    cwd = str(tmp_path)
    if case == 'restore':
        path = RESTORE_OPTIONS[0]
    else:
        make_tiny_data(cwd)  # data and weights in place: only the option checked here is wrong
        opt = tiny_options()
        save_weights(opt, cwd)
        if case == 'no_num_gpu':
            del opt['num_gpu']
        elif case == 'no_io_backend':
            del opt['datasets']['train']['io_backend']
            opt['datasets']['train']['type'] = 'PairedImageDataset'  # BasicSR's: needs io_backend
            opt['datasets']['train']['dataroot_gt'] = opt['datasets']['train'].pop('dataroot_gan')
            for key in ('dataroot_mse', 'dataroot_mask', 'transform', 'keep_in_memory', 'return_mask'):
                opt['datasets']['train'].pop(key, None)
        elif case == 'no_gt_size':
            del opt['datasets']['train']['gt_size']
        else:
            opt['network_g']['num_featt'] = opt['network_g'].pop('num_feat')
        previous = experiment_dir(cwd, opt)
        os.makedirs(osp.join(previous, 'training_states'))
        path = write_yaml(osp.join(cwd, 'options.yml'), opt)
    error = the_error(train_main(['-opt', path], cwd), 2)
    expected = {'restore': 'desra restore train -opt', 'no_num_gpu': 'num_gpu is missing',
                'no_io_backend': 'datasets.train.io_backend is missing',
                'no_gt_size': 'datasets.train.gt_size is missing',
                'num_featt': 'network_g.num_featt: not an argument of RRDBNet'}[case]
    assert expected in error, error
    folders = os.listdir(osp.join(cwd, 'experiments')) if osp.isdir(osp.join(cwd, 'experiments')) else []
    assert not any('archived' in f for f in folders), folders
    if case != 'restore':
        assert os.listdir(previous) == ['training_states']


# ---------------------------------------------------------------------------------------------------- --force_yml
def test_force_yml_entries_apply_like_basicsr():
    argv = ['-opt', 'o.yml', '--force_yml', 'train:ema_decay=0.9', 'dist_params:backend=gloo', '--auto_resume']
    assert force_yml_entries(argv) == ['train:ema_decay=0.9', 'dist_params:backend=gloo']
    assert force_yml_entries(['--force_yml=a:b=1']) == ['a:b=1']
    opt = {'train': {'ema_decay': 0.999}, 'dist_params': {'backend': 'nccl'}}
    apply_force_yml(opt, force_yml_entries(argv), 'o.yml')
    assert opt == {'train': {'ema_decay': 0.9}, 'dist_params': {'backend': 'gloo'}}
    with pytest.raises(DesraSettingsError, match='o.yml has no option nothere'):
        apply_force_yml(opt, ['nothere:x=1'], 'o.yml')
    with pytest.raises(DesraSettingsError, match='expected KEY:SUBKEY=VALUE'):
        apply_force_yml(opt, ['train:ema_decay'], 'o.yml')


def test_force_yml_sets_the_dist_backend(tmp_path, monkeypatch):
    from desra_basicsr.compat import DIST_BACKEND_ENV
    monkeypatch.delenv(DIST_BACKEND_ENV, raising=False)
    path = write_yaml(str(tmp_path / 'o.yml'), {'name': 'x', 'dist_params': {'backend': 'nccl', 'port': 1}})
    prepare_argv(['-opt', path, '--launcher', 'pytorch', '--force_yml', 'dist_params:backend=gloo'])
    assert os.environ[DIST_BACKEND_ENV] == 'gloo'


# ----------------------------------------------------------------------------------------------- resume checks
def _saved_run(cwd: str, opt: dict, cmd: str = 'desra_basicsr/train.py -opt options.yml --auto_resume') -> str:
    """An experiment folder as BasicSR leaves it: a training state and its header-stamped copy of the options."""
    experiment = experiment_dir(cwd, opt)
    os.makedirs(osp.join(experiment, 'training_states'))
    open(osp.join(experiment, 'training_states', '2.state'), 'wb').close()
    return write_yaml(osp.join(experiment, 'options.yml'), opt,
                      f'# GENERATE TIME: Mon Jan  1 00:00:00 2024\n# CMD:\n# {cmd}\n\n')


def test_resume_refuses_other_training_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opt = tiny_options()
    saved = _saved_run(str(tmp_path), opt)
    changed = copy.deepcopy(opt)
    changed['manual_seed'] = 123
    changed['train']['optim_g']['lr'] = 0.5
    with pytest.raises(DesraSettingsError) as info:
        check_resume_options(changed, 'new.yml', auto_resume=True)
    assert str(info.value) == (
        f'new.yml: differs from {saved}, the options of the run it would resume (manual_seed, train.optim_g.lr); '
        f'remove or rename {experiment_dir(str(tmp_path), opt)} to train anew (or drop --auto_resume)')
    check_resume_options(changed, 'new.yml', auto_resume=False)  # a new run: BasicSR archives the folder
    longer = copy.deepcopy(opt)  # a longer run, other loaders, logging and validation: resumable
    longer['train']['total_iter'] = 10
    longer['datasets']['train']['num_worker_per_gpu'] = 3
    longer['logger']['print_freq'] = 7
    longer['datasets']['val']['name'] = 'other'
    check_resume_options(longer, 'new.yml', auto_resume=True)


def test_resume_compares_with_the_saved_force_yml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opt = tiny_options()
    _saved_run(str(tmp_path), opt, 'desra_basicsr/train.py -opt options.yml --force_yml train:ema_decay=0.5')
    forced = copy.deepcopy(opt)
    forced['train']['ema_decay'] = 0.5
    check_resume_options(forced, 'new.yml', auto_resume=True)
    with pytest.raises(DesraSettingsError, match=r'\(train\.ema_decay\)'):
        check_resume_options(opt, 'new.yml', auto_resume=True)


def test_resume_state_path_compares_with_its_own_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opt = tiny_options()
    saved = _saved_run(str(tmp_path), opt)
    other = copy.deepcopy(opt)
    other['name'] = 'another_run'
    other['network_g']['num_block'] = 3
    other['path']['resume_state'] = osp.join(experiment_dir(str(tmp_path), opt), 'training_states', '2.state')
    with pytest.raises(DesraSettingsError, match=rf'differs from {saved}.*\(network_g\.num_block\); set '
                                                 r'path\.resume_state: ~'):
        check_resume_options(other, 'new.yml', auto_resume=False)


def test_trained_options_leave_out_what_does_not_change_the_weights():
    opt = tiny_options()
    picked = trained_options(opt)
    assert set(picked) == {'model_type', 'scale', 'manual_seed', 'network_g', 'network_d', 'train', 'datasets',
                           'path'}
    assert 'total_iter' not in picked['train'] and list(picked['datasets']) == ['train']
    assert 'total_iter' in opt['train']  # the options themselves are left as they are


# ---------------------------------------------------------------------------------------------- training states
def test_unreadable_training_state_is_named(tmp_path, monkeypatch):
    import basicsr.train
    monkeypatch.chdir(tmp_path)
    states = tmp_path / 'experiments' / 'x' / 'training_states'
    states.mkdir(parents=True)
    torch.save({'epoch': 0, 'iter': 1, 'optimizers': [], 'schedulers': []}, str(states / '1.state'))
    (states / '2.state').write_bytes(b'not a torch file at all')
    opt = {'name': 'x', 'num_gpu': 0, 'auto_resume': True, 'path': {'resume_state': None}}
    load = checked_state_loader(basicsr.train.load_resume_state)  # the CPU path (the compat fix)
    with pytest.raises(DesraSettingsError) as info:
        load(copy.deepcopy(opt))
    message = str(info.value)
    assert message.startswith(f'{states / "2.state"}: unreadable training state (')
    assert message.endswith('; delete it to resume from the previous one') and 'weights_only' not in message
    os.remove(states / '2.state')
    assert load(copy.deepcopy(opt))['iter'] == 1

    def gpu_loader(opt):  # BasicSR's own loader, as on GPUs: torch.load's error passes through it
        opt['path']['resume_state'] = str(states / '1.state')
        raise pickle.UnpicklingError('invalid load key, \'x\'.')

    with pytest.raises(DesraSettingsError, match=r'1\.state: unreadable training state \(not a checkpoint'):
        checked_state_loader(gpu_loader)(copy.deepcopy(opt))


def test_changed_options_and_a_truncated_state_end_to_end(tmp_path):
    """A finished run is not resumed with other options, and a truncated state is named; nothing is changed."""
    cwd = str(tmp_path)
    make_tiny_data(cwd)
    opt = tiny_options()
    save_weights(opt, cwd)
    run_train(opt, cwd, extra_args=['--auto_resume'], timeout=300)
    assert latest_state_iter(cwd, opt) == 2
    experiment = experiment_dir(cwd, opt)
    state = osp.join(experiment, 'training_states', '2.state')
    before = {f: open(osp.join(experiment, f), 'rb').read() for f in ('options.yml', 'training_states/2.state',
                                                                      'models/net_g_latest.pth')}
    changed = copy.deepcopy(opt)
    changed['manual_seed'] = opt['manual_seed'] + 1
    changed['train']['optim_g']['lr'] = 3e-4
    error = the_error(run_train(changed, cwd, extra_args=['--auto_resume'], check=False, timeout=300), 2)
    assert f"differs from {osp.join(experiment, 'options.yml')}" in error and experiment in error, error
    assert '(manual_seed, train.optim_g.lr)' in error
    after = {f: open(osp.join(experiment, f), 'rb').read() for f in before}
    assert after == before
    with open(state, 'r+b') as f:
        f.truncate(os.path.getsize(state) // 2)
    error = the_error(run_train(opt, cwd, extra_args=['--auto_resume'], check=False, timeout=300), 2)
    assert error.startswith(f'error: {state}: unreadable training state (') and 'weights_only' not in error, error
