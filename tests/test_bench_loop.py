"""``benchmarks/bench_loop.py`` on 48 px crops of the corpus and fine-tunes of a few iterations."""
import json
import sys

from benchmarks import bench_loop


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
