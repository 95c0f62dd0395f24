"""Choosing the fine-tune's length: the rule on hand-made score tables, and the scores of a tiny run's checkpoints."""
import json
import os.path as osp

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.evaluation.selection import DEFAULT_RULE, CheckpointScore, SelectionRule, choose_checkpoint
from helpers.finetune_job import tiny_data, tiny_settings


def row(it, area, addition=0.0, detail=0.95, removal=50.0):
    return CheckpointScore(iter=it, area=area, addition_rate=addition, removal_rate=removal, detail=detail)


def test_smallest_area_among_the_admitted():
    table = [row(100, 3.0), row(200, 1.0, addition=5.0), row(300, 1.5), row(400, 0.5, detail=0.8), row(500, 2.0)]
    choice, reason = choose_checkpoint(table)
    assert choice.iter == 300 and 'smallest detected area (1.50 %) of the 3 of 5' in reason


def test_ties_go_to_the_last_of_the_plateau_and_undefined_detail_is_not_admitted():
    assert choose_checkpoint([row(300, 1.0), row(100, 1.0), row(200, 1.0)])[0].iter == 300
    assert choose_checkpoint([row(100, 0.1, detail=None), row(200, 1.0)])[0].iter == 200
    assert choose_checkpoint([row(100, 0.1, detail=float('nan')), row(200, 1.0)])[0].iter == 200


def test_the_plateau_on_a_validation_split_of_one_photo():
    # Three checkpoints reach 0 % area; the earliest (400) under-trains, the rule keeps the last of the run.
    table = [row(100, 1.95), row(200, 1.80), row(300, 1.65), row(400, 0.0, detail=0.957),
             row(500, 0.0, detail=0.947), row(600, 0.0, detail=0.919), row(700, 13.6, addition=100.0),
             row(800, 0.0, detail=0.95), row(900, 32.1, addition=100.0)]
    choice, reason = choose_checkpoint(table)
    assert choice.iter == 600
    assert reason.startswith('iteration 600: the last of 3 consecutive checkpoint(s) from iteration 400 within 0.05')
    assert 'smallest detected area (0.00 %) of the 7 of 9 checkpoint(s)' in reason


def test_the_plateau_ends_at_a_worse_or_unadmitted_checkpoint():
    # 300 is admitted but 0.06 points above the smallest: beyond the tie, so the run 100-200 ends there.
    assert choose_checkpoint([row(100, 0.0), row(200, 0.04), row(300, 0.06), row(400, 0.0)])[0].iter == 200
    # 200 has the same area but adds artifacts (not admitted): the run is 100 alone, 300 is not reached.
    assert choose_checkpoint([row(100, 0.0), row(200, 0.0, addition=50.0), row(300, 0.0)])[0].iter == 100
    # 200's detail is below the rule's floor.
    assert choose_checkpoint([row(100, 0.5), row(200, 0.5, detail=0.85), row(300, 0.5)])[0].iter == 100
    # The run starts at the earliest tie, even when a later one has the exact smallest area.
    assert choose_checkpoint([row(100, 2.0), row(200, 0.03), row(300, 0.0), row(400, 0.9)])[0].iter == 300


def test_a_tie_of_zero_is_the_smallest_area_earliest_among_equals():
    exact = SelectionRule(tie_area=0.0)
    table = [row(100, 0.2), row(200, 0.1), row(300, 0.1), row(400, 0.15)]
    assert choose_checkpoint(table, exact)[0].iter == 300
    assert choose_checkpoint(table, SelectionRule(tie_area=0.1))[0].iter == 400
    assert choose_checkpoint([row(100, 0.1), row(200, 0.11), row(300, 0.1)], exact)[0].iter == 100


def test_fallback_fewest_additions_then_area_and_says_so():
    table = [row(100, 1.0, addition=10.0), row(200, 2.0, addition=5.0), row(300, 1.0, addition=5.0, detail=0.5)]
    choice, reason = choose_checkpoint(table)
    assert choice.iter == 300 and 'no checkpoint has addition rate <= 0 % and detail >= 0.9' in reason


def test_fixed_length_and_looser_rule():
    table = [row(1000, 5.0), row(500, 1.0)]
    choice, reason = choose_checkpoint(table, None)
    assert choice.iter == 1000 and reason.startswith('fixed length')
    loose = SelectionRule(max_addition=10.0, min_detail=0.5)
    assert choose_checkpoint([row(1, 2.0), row(2, 1.0, addition=8.0, detail=0.6)], loose)[0].iter == 2


@pytest.mark.parametrize('table', [[], [row(1, 1.0), row(1, 2.0)]])
def test_empty_or_repeated_iterations_refused(table):
    with pytest.raises(ValueError):
        choose_checkpoint(table)


ROWS = st.lists(
    st.builds(row,
              it=st.integers(0, 10_000),
              area=st.floats(0, 100),
              addition=st.sampled_from([0.0, 0.0, 5.0, 50.0]),
              detail=st.one_of(st.none(), st.floats(0, 1.5))),
    min_size=1, max_size=8, unique_by=lambda s: s.iter)


@settings(max_examples=25, deadline=None)
@given(table=ROWS, data=st.data())
def test_choice_obeys_the_rule_and_ignores_the_order(table, data):
    choice, _ = choose_checkpoint(table)
    admitted = [s for s in table if DEFAULT_RULE.admits(s)]
    if admitted:
        assert DEFAULT_RULE.admits(choice)
        assert choice.area <= min(s.area for s in admitted) + DEFAULT_RULE.tie_area
        later = [s for s in table if s.iter > choice.iter]
        if later:  # the plateau ends: the next checkpoint does not tie
            after = min(later, key=lambda s: s.iter)
            assert not DEFAULT_RULE.admits(after) or after.area > min(s.area for s in admitted) + DEFAULT_RULE.tie_area
    shuffled = data.draw(st.permutations(table))
    assert choose_checkpoint(shuffled) == choose_checkpoint(table)
    assert choose_checkpoint(shuffled, None)[0].iter == max(s.iter for s in table)


def test_score_checkpoints_of_a_tiny_run(tmp_path, vgg19_file):
    from desra_basicsr.jobs import finetune
    from desra_basicsr.jobs.checkpoint_scores import CheckpointScoreSettings, read_scores, score_checkpoints
    data = tiny_data(str(tmp_path / 'data'))
    run = finetune.run(tiny_settings(data, str(tmp_path / 'ft'), vgg19_file))
    val = data['val']
    settings = CheckpointScoreSettings(out=str(tmp_path / 'scores'), lr=val['lq'], mse=val['mse'], gan=val['gan'],
                                       masks=val['mask'], opt=run.options, checkpoints=run.checkpoints,
                                       detect_options={'min_area': 16}, progress=False)
    table = score_checkpoints(settings)
    assert [s.iter for s in table] == [2, 4]
    for score in table:
        assert 0 <= score.area <= 100 and 0 <= score.addition_rate <= 100 and score.detail is not None
        folder = tmp_path / 'scores' / f'iter_{score.iter}'
        assert sorted(p.name for p in (folder / 'sr').glob('*.png')) == ['astronaut.png', 'chelsea.png']
        assert osp.isfile(folder / 'masks' / 'summary.json') and osp.isfile(folder / 'compare.json')
    assert read_scores(str(tmp_path / 'scores' / 'scores.json')) == table
    with open(tmp_path / 'scores' / 'scores.json') as f:
        assert set(json.load(f)['per_image']['2']['detail']) == {'astronaut', 'chelsea'}
    assert score_checkpoints(settings) == table  # resumed: every image kept
    assert choose_checkpoint(table)[0].iter in (2, 4)
    with pytest.raises(DesraSettingsError, match='net_g_9.pth'):
        score_checkpoints(settings.replace(checkpoints=((9, osp.join(run.experiment, 'models', 'net_g_9.pth')), )))
