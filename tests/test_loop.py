"""``desra loop`` on tiny crops of the corpus's photos with the demo models: rounds, resume, rejection, registry."""
import json
import os.path as osp

import yaml

import desra_basicsr.jobs.loop as loop
from desra_basicsr.commands import main
from desra_basicsr.image_io import list_images
from desra_basicsr.jobs.core import Interrupted
from helpers.loop import loop_args, make_batch, make_batches, stage_records
from helpers.paths import REPO_ROOT


def read_manifest(out):
    with open(osp.join(out, 'models', 'manifest.json')) as f:
        return json.load(f)


def test_loop_one_round_registers_a_servable_version(tmp_path, capsys):
    batch = make_batch(str(tmp_path / 'b1'), ['apple'])
    out = str(tmp_path / 'loop')
    assert main(loop_args(out, batch)) == 0
    printed = capsys.readouterr().out
    assert '=== round 1: 1 images, 1 with artifacts' in printed and 'pool (trained + validation)' in printed
    assert 'accepted as v1' in printed and 'current model: v1' in printed
    manifest = read_manifest(out)
    assert manifest['current'] == 'v1'
    assert [(v['version'], v['parent']) for v in manifest['versions']] == [('v0', None), ('v1', 'v0')]
    v1 = manifest['versions'][1]
    assert v1['iterations'] == 2 and v1['data'] == {'train': ['r001_apple'], 'validation': []}
    assert 'fixed length' in v1['reason'] and v1['scores']['pool_after']['summary']['images'] == 1
    assert osp.isfile(osp.join(out, 'report', 'index.html'))
    assert osp.isfile(osp.join(out, 'report', 'round_001', 'index.html'))
    # Every version is served by desra sr.
    assert main(['sr', '--opt', v1['opt'], '--input', batch, '--out', str(tmp_path / 'served')]) == 0
    assert list_images(str(tmp_path / 'served')) == ['apple.png']
    # Run again: everything is recorded, nothing is done again.
    before = stage_records(out)
    assert main(loop_args(out, batch)) == 0
    assert stage_records(out) == before


def test_loop_two_rounds_resumed_after_an_interrupt(tmp_path, capsys, monkeypatch):
    batches = make_batches(str(tmp_path))
    out = str(tmp_path / 'loop')
    calls = []
    original = loop.score_model

    def killed_in_round_two(settings, images, opt, folder):
        calls.append(folder)
        if '/rounds/002/' in folder + '/':
            raise Interrupted(15)
        return original(settings, images, opt, folder)

    monkeypatch.setattr(loop, 'score_model', killed_in_round_two)
    assert main(loop_args(out, *batches)) == 143
    assert 'interrupted (SIGTERM)' in capsys.readouterr().err
    killed = stage_records(out)
    assert 'accept' in killed['1'] and 'finetune' in killed['2'] and 'forgetting' not in killed['2']

    monkeypatch.setattr(loop, 'score_model', original)
    assert main(loop_args(out, *batches)) == 0
    resumed = stage_records(out)
    assert resumed['1'] == killed['1']
    assert {k: resumed['2'][k] for k in killed['2']} == killed['2']  # the fine-tune of round 2 was not redone
    manifest = read_manifest(out)
    chain = [(v['version'], v['parent']) for v in manifest['versions']]
    assert chain == [('v0', None), ('v1', 'v0'), ('v2', 'v1')]
    assert manifest['current'] == 'v2' and manifest['versions'][2]['data']['train'] == ['r002_bridge']
    assert resumed['2']['forgetting']['images'] == 1  # round 1's fixed image, scored with the candidate
    printed = capsys.readouterr().out
    assert 'fixed in earlier rounds' in printed and 'current model: v2' in printed


def test_a_model_that_adds_artifacts_on_an_earlier_batch_is_rejected(tmp_path, capsys):
    b1, b2 = make_batches(str(tmp_path))
    out = str(tmp_path / 'loop')
    assert main(loop_args(out, b1)) == 0
    # A pathological recipe from round 2 on: a learning rate 10^4 times the demo's.
    template = osp.join(out, 'options', 'template.yml')
    with open(template) as f:
        opt = yaml.safe_load(f)
    opt['train']['optim_g']['lr'] = 0.1
    with open(template, 'w') as f:
        yaml.safe_dump(opt, f)
    capsys.readouterr()
    assert main(loop_args(out, b1, b2)) == 0
    printed = capsys.readouterr().out
    assert 'images fixed in earlier rounds gained artifacts' in printed and 'beyond the tolerance of 0 %' in printed
    assert 'v1 kept' in printed and 'current model: v1' in printed
    manifest = read_manifest(out)
    assert manifest['current'] == 'v1' and [v['version'] for v in manifest['versions']] == ['v0', 'v1']
    with open(osp.join(out, 'loop_state.json')) as f:
        state = json.load(f)
    assert [e['name'] for e in state['pool']] == ['r002_bridge']  # kept for the next round
    assert [e['name'] for e in state['fixed']] == ['r001_apple']


def test_held_back_images_are_never_trained_on_and_reject_a_model_that_paints_on_them(tmp_path, capsys):
    batch = make_batch(str(tmp_path / 'b1'), ['apple', 'aerial', 'baboon'])
    # A pathological recipe: a learning rate 10^4 times the demo's.
    with open(osp.join(REPO_ROOT, 'options', 'demo_finetune_desra.yml')) as f:
        opt = yaml.safe_load(f)
    opt['train']['optim_g']['lr'] = 0.1
    template = str(tmp_path / 'pathological.yml')
    with open(template, 'w') as f:
        yaml.safe_dump(opt, f)
    out = str(tmp_path / 'loop')
    extra = ['--train-clean', '--holdback', '0.5', '--pool-tolerance', '100', '--template', template]
    assert main(loop_args(out, batch, extra=extra)) == 0
    split = stage_records(out)['1']['split']
    assert split['validation'] == ['r001_baboon'] and split['train'] == ['r001_aerial', 'r001_apple']
    assert list_images(osp.join(out, 'rounds', '001', 'train', 'lr')) == ['r001_aerial.png', 'r001_apple.png']
    chosen = stage_records(out)['1']['choose']
    assert [row['iter'] for row in chosen['scores']] == [2]  # the fixed length's checkpoint, on the held-back image
    printed = capsys.readouterr().out
    assert '1 of 1 validation images, never trained on, gained artifacts (100.0 %, beyond --max-addition 0 %)' in \
        printed
    assert 'v0 kept' in printed and read_manifest(out)['current'] == 'v0'
