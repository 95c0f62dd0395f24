"""``EdgeRandomCrop``: crops centred uniformly over the image hold its edges far more often than mmseg's
``RandomCrop``, stay inside the image, keep image and mask aligned, and keep ``cat_max_ratio``'s retries."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mmseg.datasets.transforms import RandomCrop

import desra_basicsr  # noqa: F401 (mmcv-lite compat fix before mmseg's transforms)
from desra_basicsr.localizer.config import Augmentation, DataSource, build_train_config
from desra_basicsr.localizer.transforms import EdgeRandomCrop, edge_crop_offset


class _Fixed:
    """A random source whose ``randint`` returns a given value (to enumerate every centre)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def randint(self, low: int, high: int) -> int:
        assert low <= self.value < high
        return self.value


@given(side=st.integers(1, 2000), crop=st.integers(1, 2000), seed=st.integers(0, 2**32 - 1))
def test_offset_keeps_the_crop_inside_the_image(side, crop, seed):
    offset = edge_crop_offset(side, crop, np.random.RandomState(seed))
    assert 0 <= offset <= max(side - crop, 0)


@pytest.mark.parametrize('side, crop', [(424, 192), (640, 192), (800, 256), (97, 48)])
def test_every_centre_gives_edges_half_the_middle_rate(side, crop):
    """Sides of more than two crops, where the middle is in exactly the crops centred within crop / 2 of it."""
    offsets = np.array([edge_crop_offset(side, crop, _Fixed(c)) for c in range(side)])
    covered = np.zeros(side)
    for offset in offsets:
        covered[offset:offset + crop] += 1 / side
    # Each edge is in a crop about crop / (2 side) of the time, the middle about crop / side (the module docstring);
    # mmseg's uniform offsets put an edge pixel in 1 crop of side - crop + 1.
    assert covered[0] == pytest.approx(crop / (2 * side), abs=1.5 / side)
    assert covered[-1] == pytest.approx(crop / (2 * side), abs=1.5 / side)
    assert covered[side // 2] == pytest.approx(crop / side, abs=1.5 / side)
    assert covered[0] > 10 / (side - crop + 1)


def _sample(h: int = 120, w: int = 200) -> dict:
    """An image whose pixel values encode their position, and a mask marking a one-pixel frame."""
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([yy, xx, np.zeros_like(yy)], axis=-1).astype(np.float32)
    mask = np.zeros((h, w), np.uint8)
    mask[0], mask[-1], mask[:, 0], mask[:, -1] = 1, 1, 1, 1
    return dict(img=img, gt_seg_map=mask, seg_fields=['gt_seg_map'], img_shape=(h, w))


def _edge_share(transform, n: int = 400) -> float:
    np.random.seed(0)
    frame = _sample()['gt_seg_map']
    touching = 0
    for _ in range(n):
        out = transform(_sample())
        crop_img, crop_mask = out['img'], out['gt_seg_map']
        assert crop_img.shape[:2] == crop_mask.shape == (48, 48)
        y0, x0 = int(crop_img[0, 0, 0]), int(crop_img[0, 0, 1])
        np.testing.assert_array_equal(crop_mask, frame[y0:y0 + 48, x0:x0 + 48])
        touching += bool(crop_mask.any())
    return touching / n


def test_edge_crops_hold_the_frame_far_more_often_than_mmseg_random_crop():
    edge = _edge_share(EdgeRandomCrop(crop_size=(48, 48)))
    plain = _edge_share(RandomCrop(crop_size=(48, 48)))
    # Some edge in the crop: 1 - (1 - 49/120) (1 - 49/200) = 0.55, against about 2/73 + 2/153 = 0.04.
    assert edge == pytest.approx(0.55, abs=0.07)
    assert plain < 0.1 and edge > 4 * plain


def test_cat_max_ratio_retries_as_random_crop_does():
    """A crop that is all one class is drawn again, up to 10 times: nearly every crop holds some of the frame."""
    retried = _edge_share(EdgeRandomCrop(crop_size=(48, 48), cat_max_ratio=0.99), n=200)
    assert retried > 0.85


def test_the_option_puts_it_in_the_training_pipeline(tmp_path):
    cfg = build_train_config('fast-scnn', [DataSource('img', 'mask')], str(tmp_path), iters=10, artifact_weight=1.0,
                             augmentation=Augmentation(edge_crops=True))
    pipeline = cfg.train_dataloader.dataset.datasets[0].pipeline
    assert [t['type'] for t in pipeline] == ['LoadImageFromFile', 'LoadArtifactMask', 'EdgeRandomCrop', 'RandomFlip',
                                             'PackSegInputs']
