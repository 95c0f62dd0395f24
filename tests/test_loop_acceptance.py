"""The acceptance check of ``desra loop`` on hand-made figures: earlier batches strictly, the pool with a tolerance, a
choice the rule made only as its fallback never."""
import json
import os.path as osp
from dataclasses import asdict

import pytest

import desra_basicsr.jobs.loop as loop
from desra_basicsr.evaluation.selection import CheckpointScore, SelectionRule, choose_checkpoint
from desra_basicsr.jobs import checkpoint_scores
from desra_basicsr.jobs.loop import LoopSettings, fell_back, rejection_reasons
from desra_basicsr.jobs.loop_state import LoopState
from desra_basicsr.jobs.model_registry import ModelRegistry
from desra_basicsr.settings import default_of
from helpers.loop import DEMO_MODELS, stage_records

PASSED = {'passed': True, 'reason': '0 of 4 images fixed in earlier rounds gained artifacts'}
FORGOT = {'passed': False, 'reason': '1 of 4 images fixed in earlier rounds gained artifacts (25.0 %, beyond ...)'}


def pool(images, added):
    return {'images': images, 'images_with_additions': added, 'addition_rate': 100.0 * added / images}


def test_the_defaults_are_strict_on_earlier_batches_and_allow_one_pool_image_in_ten():
    assert default_of(LoopSettings, 'forget_tolerance') == 0.0
    assert default_of(LoopSettings, 'pool_tolerance') == 10.0


@pytest.mark.parametrize('images, added, accepted', [(11, 0, True), (11, 1, True), (16, 1, True), (10, 1, True),
                                                     (5, 1, False), (16, 2, False), (1, 1, False)])
def test_the_pool_tolerance_counts_images(images, added, accepted):
    reasons = rejection_reasons(PASSED, pool(images, added), 10.0)
    assert (not reasons) == accepted
    if not accepted:
        assert reasons == [f'{added} of {images} images of the pool it was fine-tuned on gained artifacts '
                           f'({100.0 * added / images:.1f} %, beyond the pool tolerance of 10 %)']


def test_an_earlier_batch_that_gained_artifacts_rejects_whatever_the_pool():
    assert rejection_reasons(FORGOT, pool(11, 0), 10.0) == [FORGOT['reason']]
    assert rejection_reasons(FORGOT, pool(5, 1), 100.0) == [FORGOT['reason']]
    both = rejection_reasons(FORGOT, pool(5, 1), 0.0)
    assert both[0] == FORGOT['reason'] and both[1].startswith('1 of 5 images of the pool')


@pytest.mark.parametrize('images, added, max_addition, accepted', [(3, 0, 0.0, True), (3, 1, 0.0, False),
                                                                   (4, 1, 25.0, True), (4, 2, 25.0, False)])
def test_additions_on_the_validation_split_beyond_max_addition_reject(images, added, max_addition, accepted):
    validation = {'images': images, 'addition_rate': 100.0 * added / images}
    reasons = rejection_reasons(PASSED, pool(11, 0), 10.0, validation, max_addition)
    assert (not reasons) == accepted
    if not accepted:
        assert reasons == [f'{added} of {images} validation images, never trained on, gained artifacts '
                           f'({100.0 * added / images:.1f} %, beyond --max-addition {max_addition:g} %)']


def test_a_round_without_a_validation_split_is_not_judged_on_one():
    assert rejection_reasons(PASSED, pool(11, 0), 10.0, None, 0.0) == []


#: The review's case: no checkpoint keeps detail >= 0.9, so the rule falls back to iteration 200.
FALLBACK_SCORES = [CheckpointScore(100, 1.0, 0.0, 50.0, 0.55), CheckpointScore(200, 0.5, 0.0, 80.0, 0.40)]


def loop_settings(tmp_path, **changes):
    """Settings with the demo models (``DEMO_MODELS`` as fields)."""
    models = {flag[2:].replace('-', '_'): value for flag, value in zip(DEMO_MODELS[::2], DEMO_MODELS[1::2])}
    return LoopSettings(out=str(tmp_path / 'loop'), batches=(str(tmp_path),), **models, **changes)


def test_fell_back_says_whether_the_rule_admitted_no_checkpoint(tmp_path):
    chosen = {'iteration': 200, 'scores': [asdict(s) for s in FALLBACK_SCORES]}
    assert 'fell back' in choose_checkpoint(FALLBACK_SCORES, SelectionRule())[1]
    assert fell_back(loop_settings(tmp_path), chosen)
    assert not fell_back(loop_settings(tmp_path, min_detail=0.5), chosen)  # iteration 100 is admitted
    assert not fell_back(loop_settings(tmp_path, length='fixed'), chosen)


def test_a_candidate_the_rule_kept_only_as_its_fallback_is_rejected():
    reason = 'iteration 200: no checkpoint has addition rate <= 0 % and detail >= 0.9; fell back to ...'
    assert rejection_reasons(PASSED, pool(11, 0), 10.0, None, 0.0, fallback=reason) == [
        f'no checkpoint met the rule on the validation split; it is only the rule\'s fallback ({reason})']
    assert rejection_reasons(PASSED, pool(11, 0), 10.0, None, 0.0, fallback=None) == []


def test_a_fallback_choice_is_recorded_and_rejected_also_from_an_older_state_file(tmp_path, monkeypatch):
    settings = loop_settings(tmp_path)
    monkeypatch.setattr(checkpoint_scores, 'score_checkpoints', lambda _: FALLBACK_SCORES)
    state = LoopState(settings.out, settings.recorded(), list(settings.batches))
    state.stage(1, 'start', lambda: {'lr': str(tmp_path), 'model': 'v0'})
    state.stage(1, 'split', lambda: {'train': ['r001_a'], 'validation': ['r001_b']})
    trained = {'checkpoints': {'100': 'net_g_100.pth', '200': 'net_g_200.pth'}, 'netd': {}, 'options': 'train.yml'}
    registry = ModelRegistry(osp.join(settings.out, 'models'))

    def accept(state):
        decided = {'choose': loop._choose(settings, state, 1, trained), 'forgetting': PASSED, 'finetune': trained,
                   'pool_after': {'summary': pool(2, 0)}}
        assert decided['choose']['iteration'] == 200 and decided['choose']['fallback'] is True
        return loop._accept(settings, state, registry, 1, decided)

    decision = accept(state)
    assert not decision['accepted'] and decision['version'] == 'v0'
    assert "only the rule's fallback (iteration 200: no checkpoint has" in decision['reason']
    records = stage_records(settings.out)['1']
    assert records['choose']['fallback'] is True  # saved with the record: a resumed round keeps it
    # A state file written before the record said so: the resumed round reads it from the recorded scores.
    del records['choose']['fallback'], records['accept']
    path = osp.join(settings.out, 'loop_state.json')
    with open(path) as f:
        data = json.load(f)
    data['rounds']['1'] = records
    with open(path, 'w') as f:
        json.dump(data, f)
    monkeypatch.setattr(checkpoint_scores, 'score_checkpoints', None)  # the recorded choice is not scored again
    assert not accept(LoopState(settings.out, settings.recorded(), list(settings.batches)))['accepted']
