"""Threshold and morphology (DeSRA-det steps 4-5): kernel sizes, hole filling, 8-connectivity, area boundary."""
import numpy as np
import pytest

from desra_basicsr.detection.morphology import MorphologyConfig, clean_mask, remove_small_regions, threshold_map


def rect_map(shape, boxes, low=0.3):
    """A D map of ones with low-valued rectangles (top, left, height, width)."""
    d = np.ones(shape, np.float32)
    for top, left, h, w in boxes:
        d[top:top + h, left:left + w] = low
    return d


def test_erode_once_dilate_three_times_grows_rectangle_by_eight():
    # 5x5 erosion removes 2 px per side, three 5x5 dilations add 6: a h x w box becomes (h + 8) x (w + 8).
    mask, n = threshold_map(rect_map((200, 200), [(50, 60, 30, 40)]), MorphologyConfig(min_area=0))
    assert n == 1
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (46, 50 + 30 - 1 + 4, 56, 60 + 40 - 1 + 4)
    assert mask.sum() == 38 * 48


def test_small_specks_vanish_under_erosion():
    d = rect_map((100, 100), [(10, 10, 4, 4), (50, 50, 4, 60)])
    mask, n = threshold_map(d, MorphologyConfig(min_area=0))
    assert n == 0 and not mask.any()


def test_threshold_is_strict():
    d = np.full((60, 60), 0.7, np.float32)
    assert not threshold_map(d, MorphologyConfig(min_area=0))[0].any()
    d[:] = 0.6999
    assert threshold_map(d, MorphologyConfig(min_area=0))[0].all()


def test_holes_are_filled():
    d = rect_map((200, 200), [(40, 40, 100, 100)])
    d[70:110, 70:110] = 1.0  # a 40x40 hole: 40 - 2*6 + 2*2 = 32 px wide after the morphology, still a hole
    filled, _ = threshold_map(d, MorphologyConfig(min_area=0))
    unfilled, _ = threshold_map(d, MorphologyConfig(min_area=0, fill_holes=False))
    assert filled[90, 90] and not unfilled[90, 90]
    assert filled.sum() == 108 * 108


@pytest.mark.parametrize('box, kept', [((42, 72), False), ((50, 61), True)])
def test_area_boundary_through_the_pipeline(box, kept):
    # (42 + 8) * (72 + 8) = 4000 -> dropped (area must exceed min_area); (50 + 8) * (61 + 8) = 4002 -> kept.
    mask, n = threshold_map(rect_map((300, 300), [(100, 100, *box)]))
    assert (n == 1) == kept
    assert mask.sum() == ((box[0] + 8) * (box[1] + 8) if kept else 0)


def test_remove_small_regions_boundary_and_eight_connectivity():
    mask = np.zeros((300, 300), bool)
    mask[0:40, 0:100] = True  # 4000 px
    mask[100:140, 0:100] = True
    mask[140, 0] = True  # 4001 px
    mask[200:210, 200:210] = True
    mask[210:220, 210:220] = True  # touches the previous square only diagonally: one 8-connected region of 200
    out, n = remove_small_regions(mask, 4000)
    assert n == 1 and out.sum() == 4001 and out[140, 0] and not out[0, 0]
    out, n = remove_small_regions(mask, 199)
    assert n == 3 and out[215, 215]
    out, n = remove_small_regions(mask, 200)
    assert n == 2 and not out[215, 215]


def test_min_area_scaling_by_image_area():
    cfg = MorphologyConfig(min_area=4000, min_area_reference=2048 * 2048)
    assert cfg.effective_min_area((1024, 1024)) == pytest.approx(1000)
    assert MorphologyConfig().effective_min_area((1024, 1024)) == 4000
    mask = np.zeros((1024, 1024), bool)
    mask[:30, :50] = True  # 1500 px, kept only with the scaled limit (no morphology)
    raw = MorphologyConfig(erode_iterations=0, dilate_iterations=0, fill_holes=False)
    assert clean_mask(mask, raw)[1] == 0
    scaled = MorphologyConfig(erode_iterations=0, dilate_iterations=0, fill_holes=False, min_area_reference=2048**2)
    assert clean_mask(mask, scaled)[1] == 1


def test_bad_settings():
    with pytest.raises(ValueError):
        MorphologyConfig(min_area=-1)
    with pytest.raises(ValueError):
        MorphologyConfig(min_area_reference=0)
