"""The DeSRA fine-tune as a job (desra_basicsr.jobs.finetune): derived options, in-process and torchrun training,
checkpoints, resuming, and refusals before any training."""
import os
import os.path as osp

import pytest
import yaml

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.jobs import finetune
from desra_basicsr.utils import option_differences
from helpers.finetune_job import tiny_data, tiny_settings
from helpers.paths import REPO_ROOT


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return tiny_data(str(tmp_path_factory.mktemp('finetune_job_data')))


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Run from a working folder that is not the output folder; returns it."""
    cwd = tmp_path / 'cwd'
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return str(cwd)


def test_in_process_twice_resumes_and_keeps_a_finished_run(data, tmp_path, vgg19_file, elsewhere):
    out = str(tmp_path / 'out')
    settings = tiny_settings(data, out, vgg19_file)
    first = finetune.run(settings)
    models = osp.join(out, 'experiments', 'tiny_finetune_RealESRGANx4plus_DeSRA', 'models')
    assert first.trained and first.experiment == osp.dirname(models)
    assert first.checkpoints == {2: osp.join(models, 'net_g_2.pth'), 4: osp.join(models, 'net_g_4.pth')}
    assert first.latest == osp.join(models, 'net_g_4.pth') and osp.isfile(first.options) and osp.isfile(first.log)
    assert not osp.exists(osp.join(elsewhere, 'experiments'))  # rooted at the output folder
    with open(first.options) as f:
        written = yaml.safe_load(f)
    assert written['train']['total_iter'] == 4 and written['logger']['save_checkpoint_freq'] == 2
    assert written['datasets']['train']['dataroot_mask'] == data['train']['mask'] and 'val' not in written
    # a run killed after the checkpoint of iteration 2: the second in-process run resumes from it
    states = osp.join(first.experiment, 'training_states')
    for path in (osp.join(models, 'net_g_4.pth'), osp.join(models, 'net_g_latest.pth'), osp.join(states, '4.state')):
        os.remove(path)
    second = finetune.run(settings)
    assert second.trained and second.checkpoints == first.checkpoints
    with open(second.log) as f:
        log = f.read()
    assert 'Resuming training from epoch: 0, iter: 2.' in log and log.count('End of training') == 2
    third = finetune.run(settings)
    assert not third.trained and third.checkpoints == first.checkpoints
    with pytest.raises(DesraSettingsError, match='other options .*train.total_iter'):
        finetune.run(settings.replace(iters=6))
    with open(first.options) as f:
        assert yaml.safe_load(f) == written


def test_final_iteration_between_checkpoints_is_the_latest_file(data, tmp_path, vgg19_file, elsewhere):
    result = finetune.run(tiny_settings(data, str(tmp_path / 'out'), vgg19_file, iters=3, discriminator=None))
    assert sorted(result.checkpoints) == [2, 3] and result.latest.endswith('net_g_latest.pth')
    with open(result.options) as f:
        assert yaml.safe_load(f)['path']['pretrain_network_d'] is None


def test_validation_folders_and_overrides(data, tmp_path, vgg19_file):
    val = {f'val_dataroot_{key}': folder for key, folder in data['val'].items()}
    settings = tiny_settings(data, str(tmp_path / 'out'), vgg19_file, seed=7, name='mine',
                             options={'train.optim_g.lr': 1e-5, 'train.scheduler.milestones': [50, 80]}, **val)
    hash(settings)
    assert settings.options == (('train.optim_g.lr', 1e-5), ('train.scheduler.milestones', (50, 80)))
    opt = finetune.derive_options(settings, cuda=False)
    assert opt['name'] == 'mine' and opt['manual_seed'] == 7 and opt['num_gpu'] == 0
    assert opt['train']['optim_g']['lr'] == 1e-5 and opt['train']['scheduler']['milestones'] == [50, 80]
    assert opt['datasets']['val']['dataroot_gan'] == data['val']['gan'] and 'metrics' in opt['val']
    two = finetune.derive_options(settings.replace(nproc=2), cuda=True)
    assert two['num_gpu'] == 2 and two['dist_params']['backend'] == 'nccl'


def test_demo_template_changes_only_the_run_keys(tmp_path):
    template = osp.join(REPO_ROOT, 'options', 'demo_finetune_desra.yml')
    folders = {key: str(tmp_path / key) for key in ('lq', 'mse', 'gan', 'mask')}
    settings = finetune.FinetuneSettings(
        template=template, out=str(tmp_path / 'out'), generator=str(tmp_path / 'g.pth'),
        discriminator=str(tmp_path / 'd.pth'), iters=500, seed=0,
        **{f'dataroot_{key}': folder for key, folder in folders.items()})
    with open(template) as f:
        original = yaml.safe_load(f)
    derived = finetune.derive_options(settings, cuda=False)
    assert list(derived) == list(original)  # same keys in the same order: the demo's option file
    assert sorted(option_differences(original, derived)) == sorted(
        [f'datasets.train.dataroot_{key}' for key in folders] + ['path.pretrain_network_g', 'path.pretrain_network_d'])


def _bad_template(tmp_path, name, text):
    path = tmp_path / f'{name}.yml'
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('case', ['missing', 'yaml', 'no_train', 'data', 'weights', 'type', 'override', 'owned',
                                  'partial_val', 'vgg'])
def test_unusable_settings_refused_before_training(case, data, tmp_path, vgg19_file, elsewhere):
    out = str(tmp_path / 'out')
    changes = {
        'missing': dict(template=str(tmp_path / 'nowhere.yml')),
        'yaml': dict(template=_bad_template(tmp_path, 'yaml', 'name: x\n- y\n')),
        'no_train': dict(template=_bad_template(tmp_path, 'no_train', 'name: x\npath: {}\ntrain: {}\nlogger: {}\n')),
        'data': dict(dataroot_mask=str(tmp_path / 'no_masks')),
        'weights': dict(generator=str(tmp_path / 'no_g.pth')),
        'type': dict(options=(('network_g.type', 'RRDBNett'), )),
        'override': dict(options=(('train.no_such_block.lr', 1.0), )),
        'vgg': dict(vgg19=str(tmp_path / 'no_vgg.pth')),
    }
    expected = {'missing': 'not found', 'yaml': 'not a valid YAML', 'no_train': 'no datasets.train block',
                'data': 'no_masks', 'weights': 'no_g.pth', 'type': 'RRDBNett', 'override': 'no train.no_such_block',
                'owned': 'set by the iters setting', 'partial_val': 'all four', 'vgg': 'VGG19'}
    with pytest.raises(DesraSettingsError, match=expected[case]) as err:
        if case == 'owned':
            tiny_settings(data, out, vgg19_file, options=(('train.total_iter', 9), ))
        elif case == 'partial_val':
            tiny_settings(data, out, vgg19_file, val_dataroot_lq=data['val']['lq'])
        else:
            finetune.run(tiny_settings(data, out, changes[case].pop('vgg19', vgg19_file), **changes[case]))
    assert '\n' not in str(err.value)
    assert not osp.exists(osp.join(out, 'experiments', 'tiny_finetune_RealESRGANx4plus_DeSRA'))
    assert not osp.exists(osp.join(elsewhere, 'experiments'))


@pytest.mark.slow
def test_torchrun_two_processes(data, tmp_path, vgg19_file, elsewhere, monkeypatch):
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    result = finetune.run(tiny_settings(data, str(tmp_path / 'out'), vgg19_file, nproc=2))
    assert sorted(result.checkpoints) == [2, 4] and result.trained
    with open(result.log) as f:
        assert 'End of training' in f.read()
    with open(result.options) as f:
        assert yaml.safe_load(f)['dist_params']['backend'] == 'gloo'
