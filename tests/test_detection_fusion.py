"""Multi-model fusion on hand-made cases: painted artifacts, agreement, seams, fallback, bad inputs."""
import numpy as np
import pytest

from desra_basicsr.detection.fusion import FusionConfig, choose_sources, desra_scores, feather_blend, fuse
from helpers.photos import paint_noise, skimage_photo_bgr


def _photo(size: int = 128) -> np.ndarray:
    """A crop of a real photo where GAN-SR artifacts show: chelsea's smooth background."""
    img = skimage_photo_bgr('chelsea')
    return np.ascontiguousarray(img[160:160 + size, 320:320 + size])


def test_painted_artifact_is_taken_from_the_other_candidate():
    clean = _photo()
    a = paint_noise(clean, 16, 16, 40, seed=1)  # artifact top-left in candidate 0
    b = paint_noise(clean, 72, 72, 40, seed=2)  # artifact bottom-right in candidate 1
    result = fuse([a, b], desra_scores([a, b], clean), fallback=clean)
    # Each whole artifact, up to its border, comes from the other candidate: the clean photo.
    np.testing.assert_array_equal(result.image[16:56, 16:56], clean[16:56, 16:56])
    np.testing.assert_array_equal(result.image[72:112, 72:112], clean[72:112, 72:112])
    assert (result.index_map[26:46, 26:46] == 1).all()
    assert (result.index_map[82:102, 82:102] == 0).all()
    assert (result.index_map != 2).all()  # one candidate is always clean: the fallback is never needed
    assert result.shares.shape == (3, )
    assert result.shares.sum() == pytest.approx(1.0)
    assert result.shares[0] > 0.3 and result.shares[1] > 0.1 and result.shares[2] == 0


def test_localiser_style_scores_choose_the_clean_candidate():
    clean = _photo()
    a = paint_noise(clean, 12, 12, 40, seed=3)
    b = clean.copy()
    b[92:128, 0:60] = 255  # another painted artifact (a flat white blotch) in candidate 1
    score_a = np.zeros(clean.shape[:2], np.float32)
    score_a[12:52, 12:52] = 1
    score_b = np.zeros(clean.shape[:2], np.float32)
    score_b[92:128, 0:60] = 1
    result = fuse([a, b], [score_a, score_b], cfg=FusionConfig(artifact_threshold=0.5))
    np.testing.assert_array_equal(result.image[12:52, 12:52], clean[12:52, 12:52])
    np.testing.assert_array_equal(result.image[92:128, 0:60], clean[92:128, 0:60])
    assert (result.index_map == 2).sum() == 0


def test_untouched_where_all_candidates_agree():
    clean = _photo()
    a = paint_noise(clean, 0, 0, 48, seed=4)
    b = clean.copy()
    result = fuse([a, b, clean.copy()], desra_scores([a, b, clean], clean), fallback=clean)
    # Outside the painted square (plus the smoothing and feathering reach), a, b and the third candidate agree.
    np.testing.assert_array_equal(result.image[80:, :], clean[80:, :])
    np.testing.assert_array_equal(result.image[:, 80:], clean[:, 80:])
    # Identical candidates: the output is exactly that image, wherever the index map points.
    same = fuse([clean, clean.copy()], [np.random.default_rng(i).random(clean.shape[:2]) for i in range(2)],
                cfg=FusionConfig(region_sigma=0, margin=0, tie_margin=0))
    np.testing.assert_array_equal(same.image, clean)
    assert len(np.unique(same.index_map)) == 2


def test_no_visible_seams_at_region_borders():
    dark = np.full((64, 96, 3), 90, np.uint8)
    bright = np.full((64, 96, 3), 170, np.uint8)
    index_map = np.zeros((64, 96), np.uint8)
    index_map[:, 48:] = 1
    index_map[20:40, 10:30] = 1  # an island too
    hard = feather_blend([dark, bright], index_map, sigma=0)
    soft = feather_blend([dark, bright], index_map, sigma=4)
    step = lambda img: max(np.abs(np.diff(img.astype(int), axis=a)).max() for a in (0, 1))  # noqa: E731
    assert step(hard) == 80  # a hard border jumps by the full difference
    # Feathered: the largest step of a Gaussian-blurred edge of height 80 is 80 / (sigma * sqrt(2 pi)) ~ 8.
    assert step(soft) <= 10
    np.testing.assert_array_equal(soft[:, 70:], bright[:, 70:])
    np.testing.assert_array_equal(soft[50:, :30], dark[50:, :30])


def test_fallback_is_used_where_every_candidate_has_an_artifact():
    clean = _photo()
    a = paint_noise(clean, 30, 30, 60, seed=5)
    b = paint_noise(clean, 30, 30, 60, seed=6)
    result = fuse([a, b], desra_scores([a, b], clean), fallback=clean)
    assert (result.index_map[30:90, 30:90] == 2).all()
    np.testing.assert_array_equal(result.image[30:90, 30:90], clean[30:90, 30:90])
    assert 0 < result.shares[2] < 0.5


def test_ties_go_to_the_first_candidate():
    scores = [np.full((32, 32), 0.10, np.float32), np.full((32, 32), 0.09, np.float32)]
    assert (choose_sources(scores, FusionConfig(tie_margin=0.02)) == 0).all()
    assert (choose_sources(scores, FusionConfig(tie_margin=0.0)) == 1).all()


def test_bad_inputs_give_clear_errors():
    clean = _photo(64)
    score = np.zeros((64, 64), np.float32)
    with pytest.raises(ValueError, match='at least 2 candidates, got 1'):
        fuse([clean], [score])
    small = clean[:32, :48]
    with pytest.raises(ValueError, match=r'b\.png: size 48x32 differs from a\.png \(64x64\)'):
        fuse([clean, small], [score, score], names=['a.png', 'b.png'])
    with pytest.raises(ValueError, match=r'mse\.png: size 48x32'):
        fuse([clean, clean], [score, score], fallback=small, names=['a.png', 'b.png', 'mse.png'])
    with pytest.raises(ValueError, match='one score map per candidate'):
        fuse([clean, clean], [score])
    with pytest.raises(ValueError, match='score maps have shape'):
        fuse([clean, clean], [score[:10], score[:10]])
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        fuse([clean, clean.astype(np.float32)], [score, score])
    with pytest.raises(ValueError, match='sigmas must be >= 0'):
        FusionConfig(feather_sigma=-1)
