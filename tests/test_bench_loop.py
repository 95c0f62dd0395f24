"""``benchmarks/bench_loop.py`` on 48 px crops of the corpus and fine-tunes of a few iterations."""
import json
import os
import sys

import cv2
import pytest

from benchmarks import bench_loop
from desra_basicsr.errors import DesraSettingsError


def test_bench_loop_runs_both_lengths_with_held_back_photos_and_judges_the_targets(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / 'bench')
    monkeypatch.setattr(sys, 'argv', [
        'bench_loop', '--seeds', '0', '--crop', '48', '--iters', '4', '--checkpoint-every', '2', '--fixed-iters', '4',
        '--out', out
    ])
    bench_loop.main()
    printed = capsys.readouterr().out
    assert 'held-out set, the current model after the last round, against the targets:' in printed
    with open(f'{out}/bench_loop.json') as f:
        found = json.load(f)
    assert found['settings']['holdback'] == 0.25
    for mode in ('chosen', 'fixed'):
        rounds = found['loops'][mode]['0']['rounds']
        assert [r['round'] for r in rounds] == [1, 2, 3]
        with open(f'{out}/{mode}_seed0/loop_state.json') as f:
            state = json.load(f)
        artifact = {
            e['name']: e['artifact']
            for r in state['rounds'].values() if 'detect' in r for e in r['detect']['entries']
        }
        for record in state['rounds'].values():
            if 'split' in record:  # a quarter of the pool's photos without artifacts are held out of the fine-tune
                split = record['split']
                assert not set(split['validation']) & set(split['train'])
                clean = [n for n in split['train'] + split['validation'] if not artifact[n]]
                assert sum(not artifact[n] for n in split['validation']) == round(0.25 * len(clean))
        accepted = any(r['accepted'] for r in rounds)
        assert (found['loops'][mode]['0']['missed'] == ['no model was accepted']) == (not accepted)


def test_a_stream_made_with_other_settings_is_refused_not_reused(tmp_path):
    out = str(tmp_path / 'bench')
    stream = bench_loop.make_stream(out, 3, 48)
    assert bench_loop.make_stream(out, 3, 48) == stream  # the same settings resume it
    for count, crop, changed in ((3, 32, 'crop'), (2, 48, 'batches')):
        with pytest.raises(DesraSettingsError, match=rf'stream.json: this stream was made with other settings '
                                                     rf'\({changed}\); .*choose another --out'):
            bench_loop.make_stream(out, count, crop)
    assert sorted(os.listdir(f'{out}/stream')) == ['batch1', 'batch2', 'batch3', 'heldout', 'stream.json']
    assert cv2.imread(f'{stream["heldout"]}/{os.listdir(stream["heldout"])[0]}').shape[:2] == (48, 48)
    os.remove(f'{out}/stream/stream.json')  # a stream of unknown settings
    with pytest.raises(DesraSettingsError, match='holds a stream without stream.json'):
        bench_loop.make_stream(out, 3, 48)


@pytest.mark.parametrize('args, message', [(['--batches', '0'], '--batches 0: give a number >= 1'),
                                           (['--batches', '17'], '--batches 17: the fine-tune set has 16 photos'),
                                           (['--iters', '0'], '--iters 0: give a number >= 1'),
                                           (['--crop', '-1'], '--crop -1: give a number >= 0')])
def test_bad_counts_are_refused_before_the_stream_is_made(tmp_path, monkeypatch, args, message):
    monkeypatch.setattr(sys, 'argv', ['bench_loop', '--out', str(tmp_path / 'bench'), *args])
    with pytest.raises(DesraSettingsError, match=message):
        bench_loop.main()
    assert not (tmp_path / 'bench').exists()
