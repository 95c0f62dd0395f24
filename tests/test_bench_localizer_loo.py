"""``benchmarks/bench_localizer_fusion.py --leave-one-out``: the zoo manifest, and the whole mode on tiny data."""
import argparse
import json
import os
import os.path as osp

import numpy as np
import pytest

from benchmarks import bench_localizer_fusion as bench
from helpers.localizer import make_artifact_data, make_synthetic_folder

#: Three generators whose painted squares sit in different photos.
GENERATORS = {'gan_a': ('astronaut', 'chelsea'), 'gan_b': ('coffee', 'rocket'), 'gan_c': ('chelsea', 'rocket')}


def _zoo(root) -> str:
    """Tiny zoo outputs and masks of three generators on two splits, and a manifest with folders relative to it."""
    entries = []
    for name, photos in GENERATORS.items():
        splits = {}
        for split, size in (('finetune', 64), ('heldout', 56)):
            data = make_artifact_data(str(root / name / split), size=size, names=photos)
            splits[split] = {'sr': osp.relpath(data['img'], root), 'masks': osp.relpath(data['mask'], root)}
        entries.append({'name': name, 'class': 'gan', 'splits': splits})
    make_synthetic_folder(str(root / 'synth'))
    manifest = root / 'manifest.json'
    manifest.write_text(json.dumps({'generators': entries, 'synthetic': 'synth'}))
    return str(manifest)


def test_manifest_is_read_defensively(tmp_path):
    manifest = _zoo(tmp_path)
    generators, synthetic = bench.read_manifest(manifest)
    assert [g.name for g in generators] == list(GENERATORS) and synthetic == str(tmp_path / 'synth')
    assert generators[1].heldout == (str(tmp_path / 'gan_b' / 'heldout' / 'img'),
                                     str(tmp_path / 'gan_b' / 'heldout' / 'mask'))
    bad = tmp_path / 'bad.json'
    no_masks = {'generators': [{'name': 'a', 'splits': {'finetune': {'sr': 'x'}}}]}
    split = {'sr': 'x', 'masks': 'y'}
    no_name = {'generators': [{'splits': {'finetune': split, 'heldout': split}}]}
    for content, message in (('{', 'cannot read the zoo manifest'), ('[]', 'no "generators" list'),
                             (json.dumps(no_masks), 'generator #1 \\(a\\) has no finetune "sr" and "masks" folders'),
                             (json.dumps(no_name), 'generator #1 needs a unique "name"')):
        bad.write_text(content)
        with pytest.raises(SystemExit, match=message):
            bench.read_manifest(str(bad))


def test_summaries_give_the_mean_and_the_worst_generator():
    scores = {'a': {'iou': 50.0, 'precision': 0.9, 'recall': 0.2}, 'b': {'iou': 30.0, 'precision': 0.5, 'recall': 0.8}}
    summary = bench.summarise(scores)
    assert summary['mean'] == {'iou': 40.0, 'precision': pytest.approx(0.7), 'recall': 0.5}
    assert summary['worst'] == {'iou': 30.0, 'precision': 0.5, 'recall': 0.2}
    assert summary['worst_generator'] == {'iou': 'b', 'precision': 'b', 'recall': 'a'}


def test_each_threshold_is_chosen_on_the_other_generators_only():
    iou = lambda a, b: {0.5: {'iou': a}, 0.2: {'iou': b}}  # noqa: E731
    finetune = {'a': iou(10.0, 30.0), 'b': iou(50.0, 20.0), 'c': iou(40.0, 40.0)}
    # a: b and c give 45 at 0.5, 30 at 0.2; b: a and c give 25 / 35; c: a and b give 30 / 25
    assert bench.choose_on_other_generators(finetune) == {'a': 0.5, 'b': 0.2, 'c': 0.5}
    tie = {'a': iou(0.0, 0.0), 'b': iou(20.0, 20.0)}
    assert bench.choose_on_other_generators(tie) == {'a': 0.5, 'b': 0.5}  # equal choices: the first wins


@pytest.mark.slow
def test_leave_one_out_trains_without_each_generator_and_scores_it(tmp_path, capsys):
    manifest = _zoo(tmp_path / 'zoo')
    work = tmp_path / 'work'
    small = ['--arch', 'segformer-mit-b0', '--iters', '1', '--batch-size', '2', '--crop-size', '48']
    results = bench.main(['--leave-one-out', manifest, '--work', str(work), '--generators', 'gan_a', 'gan_b',
                          '--synthetic-weight', '2'] + small)
    assert set(results['left_out']['scores']) == {'gan_a', 'gan_b'}  # only those of --generators are left out
    assert set(results['seen']['scores']) == set(results['synthetic_only']['scores']) == set(GENERATORS)
    for part in ('left_out', 'seen', 'synthetic_only'):
        scores = results[part]['scores']
        assert results[part]['mean']['iou'] == pytest.approx(np.mean([s['iou'] for s in scores.values()]))
        assert results[part]['worst']['recall'] == min(s['recall'] for s in scores.values())
    with open(work / 'without_gan_a' / 'localizer' / 'summary.json') as f:
        sources = json.load(f)['meta']['sources']
    assert [(s['kind'], s['weight']) for s in sources] == [('generator', 1.0), ('generator', 1.0), ('synthetic', 2.0)]
    assert [osp.basename(osp.dirname(osp.dirname(s['path']))) for s in sources[:2]] == ['gan_b', 'gan_c']
    with open(work / 'leave_one_out.json') as f:
        assert json.load(f)['left_out']['worst_generator'] == results['left_out']['worst_generator']
    out = capsys.readouterr().out
    assert 'trained without the generator it is scored on' in out and 'worst' in out
    trained = osp.getmtime(work / 'without_gan_a' / 'localizer' / 'localizer.pth')
    again = bench.main(['--leave-one-out', manifest, '--work', str(work), '--generators', 'gan_a', 'gan_b',
                        '--left-out-only', '--synthetic-weight', '2', '--prob-thresholds', '0.5', '0.2'] + small)
    assert set(again) == {'manifest', 'synthetic', 'clean', 'localizer', 'left_out', 'left_out_cv'}  # no seen
    assert again['left_out']['scores'] == results['left_out']['scores']
    cv = again['left_out_cv']
    assert set(cv['chosen']) == {'gan_a', 'gan_b'} and set(cv['chosen'].values()) <= {0.5, 0.2}
    for name in ('gan_a', 'gan_b'):  # the maps at 0.5 give what desra detect gives at its default threshold
        assert cv['heldout'][name]['0.5'] == pytest.approx(results['left_out']['scores'][name])
        assert cv['scores'][name] == cv['heldout'][name][str(cv['chosen'][name])]
    assert osp.getmtime(work / 'without_gan_a' / 'localizer' / 'localizer.pth') == trained  # kept, not retrained
    for name in ('gan_a', 'gan_b'):  # held-out maps come from the scoring pass: held-out outputs are detected once
        assert (work / f'without_{name}' / 'masks' / name / 'maps').is_dir()
        assert (work / f'without_{name}' / 'cv' / 'finetune' / 'maps').is_dir()
        assert not (work / f'without_{name}' / 'cv' / 'heldout').exists()
    with pytest.raises(SystemExit, match='needs at least 2 left out'):
        bench.main(['--leave-one-out', manifest, '--work', str(work), '--generators', 'gan_a', '--prob-thresholds',
                    '0.5'] + small)
    other = tmp_path / 'work_without_synthetic'  # a second setting: the generators alone
    with pytest.raises(SystemExit, match=r'--settings-cv: .*work_without_synthetic has no localiser trained without'):
        bench.main(['--leave-one-out', manifest, '--work', str(work), '--generators', 'gan_a', 'gan_b',
                    '--left-out-only', '--synthetic-weight', '2', '--settings-cv', str(other)] + small)
    entries = json.loads(open(manifest).read())['generators']
    bare = tmp_path / 'zoo' / 'generators_only.json'  # the same generators, no synthetic folder
    bare.write_text(json.dumps({'generators': entries}))
    alone = bench.main(['--leave-one-out', str(bare), '--work', str(other), '--generators', 'gan_a', 'gan_b',
                        '--left-out-only', '--seed', '1', '--scales', '0.5', '1', '--photometric'] + small)
    assert alone['localizer']['scales'] == (0.5, 1.0) and alone['localizer']['photometric'] is True
    seen = bench.main(['--leave-one-out', str(bare), '--work', str(other), '--seen-only', '--seed', '1'] + small)
    assert set(seen) == {'manifest', 'synthetic', 'clean', 'localizer', 'seen'}  # no left-out, no synthetic-only
    assert set(seen['seen']['scores']) == set(GENERATORS) and (other / 'all_generators' / 'localizer').is_dir()
    left_out_folders = sorted(p.name for p in other.iterdir() if p.name.startswith('without_'))
    assert left_out_folders == ['without_gan_a', 'without_gan_b']  # the left-out-only run's, none trained here
    chosen = bench.main(['--leave-one-out', manifest, '--work', str(work), '--generators', 'gan_a', 'gan_b',
                         '--left-out-only', '--synthetic-weight', '2', '--settings-cv', str(other),
                         '--prob-thresholds', '0.5', '0.2'] + small)
    cv = chosen['left_out_settings_cv']
    assert [(s['work'], s['seed'], s['generators']) for s in cv['settings']] == [(str(work), 0, 2), (str(other), 1, 2)]
    assert cv['settings'][0]['other_sources'][0][0::2] == ['synthetic', 2.0]
    assert cv['settings'][1]['other_sources'] == []
    assert [(s['scales'], s['photometric']) for s in cv['settings']] == [([1.0], False), ([0.5, 1.0], True)]
    for name in ('gan_a', 'gan_b'):
        assert cv['chosen'][name] in (str(work), str(other))
        assert cv['scores'][name] == cv['heldout'][name][cv['chosen'][name]]
        assert cv['heldout'][name][str(work)] == pytest.approx(results['left_out']['scores'][name])  # this run's
        assert cv['heldout'][name][str(other)] == pytest.approx(alone['left_out']['scores'][name])
        # one fine-tune pass of this run's localisers serves both choices (the maps at 0.5 give the masks' scores)
        assert cv['finetune'][name][str(work)] == pytest.approx(chosen['left_out_cv']['finetune'][name]['0.5'])
        assert sorted(os.listdir(work / f'without_{name}' / 'cv')) == ['finetune']
    assert 'setting (--work) chosen on the other generators' in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r'--prob-thresholds: \[1.5\] not in \(0, 1\]'):
        bench.main(['--leave-one-out', manifest, '--work', str(work), '--prob-thresholds', '0.5', '1.5'] + small)
    with pytest.raises(SystemExit, match='--seen-only: trains no localiser that leaves a generator out'):
        bench.main(['--leave-one-out', manifest, '--work', str(work), '--seen-only', '--left-out-only'] + small)
    with pytest.raises(SystemExit, match=r"--generators: unknown \['gan_z'\]"):
        bench.main(['--leave-one-out', manifest, '--work', str(work), '--generators', 'gan_z'] + small)


def test_settings_cv_scores_other_folders_localisers_under_this_work_only(tmp_path, monkeypatch):
    """The other ``--settings-cv`` folders are read, never written: their own masks and maps stay as they are."""
    work, other = str(tmp_path / 'work'), str(tmp_path / 'other')
    targets = [bench.ZooGenerator(name, (f'/zoo/{name}/ft', '/m'), (f'/zoo/{name}/ho', '/m')) for name in ('a', 'b')]
    for folder in (work, other):
        for target in targets:
            localizer = os.path.join(folder, f'without_{target.name}', 'localizer')
            os.makedirs(localizer)
            open(os.path.join(localizer, 'localizer.pth'), 'w').close()
            with open(os.path.join(localizer, 'summary.json'), 'w') as f:
                json.dump({'meta': {'sources': [], 'iters': 5}}, f)
    written = []

    def score(args, localizer, split, out, save_maps=False):
        written.append(out)
        return {'iou': 50.0 if localizer.startswith(other) else 10.0, 'precision': 1.0, 'recall': 1.0}

    monkeypatch.setattr(bench, '_score', score)
    args = argparse.Namespace(settings_cv=[other])
    own = {t.name: {'iou': 10.0, 'precision': 1.0, 'recall': 1.0} for t in targets}
    found = bench._cross_validated_settings(args, work, targets, own, own)
    assert found['chosen'] == {'a': other, 'b': other}
    assert len(written) == 4 and all(out.startswith(os.path.join(work, 'settings_cv', '1_other') + os.sep)
                                     for out in written), written
    assert sorted(os.listdir(os.path.join(other, 'without_a'))) == ['localizer']


def test_settings_cv_folders_without_localisers_are_refused_before_any_training(tmp_path):
    manifest = _zoo(tmp_path / 'zoo')
    with pytest.raises(SystemExit, match=r'--settings-cv: .*absent has no localiser trained without'):
        bench.main(['--leave-one-out', manifest, '--work', str(tmp_path / 'work'), '--generators', 'gan_a', 'gan_b',
                    '--settings-cv', str(tmp_path / 'absent'), '--arch', 'segformer-mit-b0', '--iters', '1',
                    '--batch-size', '2', '--crop-size', '48'])
    assert not (tmp_path / 'work').exists()
