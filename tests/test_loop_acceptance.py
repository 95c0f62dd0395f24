"""The acceptance check of ``desra loop`` on hand-made figures: earlier batches strictly, the pool with a tolerance."""
import pytest

from desra_basicsr.jobs.loop import LoopSettings, rejection_reasons
from desra_basicsr.settings import default_of

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
