"""``scripts/build_zoo.py`` retrains a generator whose weights are missing without reusing a run of other options."""
import os
import os.path as osp

import pytest
import yaml

from test_zoo_generators import FAST, build_zoo, load, tiny_root


@pytest.mark.slow
def test_retrain_after_an_option_edit_does_not_resume_the_old_run(tmp_path):
    root = str(tmp_path)
    tiny_root(root)
    opt_path = osp.join(root, 'options', 'zoo', f'{FAST}.yml')
    weights = osp.join(root, 'experiments', 'pretrained_models', f'zoo_{FAST}_x4.pth')
    first = build_zoo('--root', root, '--only', FAST)
    assert first.returncode == 0 and osp.isfile(weights), first.stdout + first.stderr
    trained = open(weights, 'rb').read()

    opt = load(opt_path)  # a retrain with another seed and learning rate
    opt['manual_seed'] = opt['manual_seed'] + 1
    opt['train']['optim_g']['lr'] = opt['train']['optim_g']['lr'] / 2
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    os.remove(weights)
    refused = build_zoo('--root', root, '--only', FAST)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    experiment = osp.join(root, 'experiments', opt['name'])
    (line, ) = refused.stderr.strip().splitlines()
    assert line.startswith(f'error: training {FAST} ({opt_path}) stopped: {opt_path}: differs from ') and \
        f'remove or rename {experiment} to train anew' in line, line
    assert not osp.exists(weights) and 'Resuming training' not in refused.stdout

    os.rename(experiment, experiment + '_old')  # what the message says: a new run with the new options
    again = build_zoo('--root', root, '--only', FAST)
    assert again.returncode == 0, again.stdout + again.stderr
    assert open(weights, 'rb').read() != trained
