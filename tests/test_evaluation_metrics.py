"""Mask metrics against small hand-made masks whose answers are worked out by hand in the comments."""
import json
import os.path as osp

import numpy as np
import pytest

from desra_basicsr.commands import main
from desra_basicsr.errors import DesraInputError
from desra_basicsr.evaluation.folders import align_to
from desra_basicsr.evaluation.mask_metrics import (DetectionScores, FinetuneComparison, covered_regions, has_addition,
                                                   iou, region_precision, region_recall, removal_counts)
from desra_basicsr.image_io import write_mask


def box(shape, *rects):
    """Mask with the given (row0, row1, col0, col1) inclusive rectangles set."""
    m = np.zeros(shape, bool)
    for r0, r1, c0, c1 in rects:
        m[r0:r1 + 1, c0:c1 + 1] = True
    return m


def test_iou_overlapping_squares():
    # 4x4 squares offset by 2 in both axes: intersection 2x2 = 4, union 16 + 16 - 4 = 28.
    pred = box((10, 10), (0, 3, 0, 3))
    gt = box((10, 10), (2, 5, 2, 5))
    assert iou(pred, gt) == pytest.approx(4 / 28)
    assert iou(gt, pred) == pytest.approx(4 / 28)
    assert iou(pred, pred) == 1.0


def test_diagonally_touching_squares_are_one_region_and_p_exactly_half_counts():
    # Two 2x2 squares touching at a corner form ONE 8-connected region of 8 pixels. The GT covers one square:
    # covered fraction 4/8 = 0.5 exactly -> counts at p = 0.5 (>=), not at p = 0.51.
    pred = box((6, 6), (0, 1, 0, 1), (2, 3, 2, 3))
    gt = box((6, 6), (0, 1, 0, 1))
    assert covered_regions(pred, gt, 0.5) == (1, 1)
    assert region_precision(pred, gt, 0.5) == 1.0
    assert region_precision(pred, gt, 0.51) == 0.0
    # The GT square is covered 4/4 by the prediction.
    assert region_recall(pred, gt, 1.0) == 1.0


def test_side_by_side_regions_separated_by_one_pixel_are_two():
    # Columns 0-1 and 3-4 with column 2 empty: two regions; GT covers the first only -> precision 1/2.
    pred = box((4, 5), (0, 3, 0, 1), (0, 3, 3, 4))
    gt = box((4, 5), (0, 3, 0, 1))
    assert covered_regions(pred, gt) == (1, 2)
    assert region_precision(pred, gt) == 0.5


def test_recall_counts_gt_regions_by_covered_fraction():
    # GT regions: R1 3x3 (9 px) and R2 2x2 (4 px). The prediction covers 5 of R1 (5/9 >= 0.5) and 1 of R2
    # (1/4 < 0.5): recall 1/2. The prediction is one 2x3 block inside R1 (6 px, fully inside the GT) minus one
    # pixel, plus one pixel in R2: R1 covered 5/9.
    gt = box((8, 8), (0, 2, 0, 2), (5, 6, 5, 6))
    pred = box((8, 8), (0, 1, 0, 2), (5, 5, 5, 5))
    pred[1, 2] = False
    assert covered_regions(gt, pred) == (1, 2)
    assert region_recall(pred, gt) == 0.5
    # Prediction regions: the 5-pixel block (inside GT) and the single pixel (inside GT): precision 2/2.
    assert region_precision(pred, gt) == 1.0


@pytest.mark.parametrize(
    'pred_on, gt_on, expected',
    [
        (False, False, 1.0),  # both empty: nothing to find, nothing found
        (True, False, 0.0),  # empty GT, something detected
        (False, True, 0.0),  # empty prediction, GT has an artifact
    ])
def test_empty_cases(pred_on, gt_on, expected):
    pred = box((5, 5), (1, 2, 1, 2)) if pred_on else np.zeros((5, 5), bool)
    gt = box((5, 5), (1, 2, 1, 2)) if gt_on else np.zeros((5, 5), bool)
    assert iou(pred, gt) == expected
    assert region_precision(pred, gt) == expected
    assert region_recall(pred, gt) == expected
    values = DetectionScores().add('x', pred, gt)
    assert (values['iou'], values['precision'], values['recall']) == (100 * expected, expected, expected)


def test_dataset_scores_pool_regions_and_average_iou():
    scores = DetectionScores(p=0.5)
    # Image a: pred = GT = one 2x2 square: IoU 100, 1/1 detected correct, 1/1 GT found.
    a = box((6, 6), (0, 1, 0, 1))
    scores.add('a', a, a)
    # Image b: pred has two regions, one on the GT (2x2) and one false (2x2 far away); GT one 2x2 region.
    # IoU = 4 / 8 = 0.5 -> 50; precision 1/2; recall 1/1.
    gt_b = box((6, 6), (0, 1, 0, 1))
    pred_b = box((6, 6), (0, 1, 0, 1), (4, 5, 4, 5))
    scores.add('b', pred_b, gt_b)
    summary = scores.summary()
    assert summary['images'] == 2
    assert summary['iou'] == pytest.approx(75.0)  # mean of 100 and 50
    assert summary['precision'] == pytest.approx(2 / 3)  # pooled (1 + 1) / (1 + 2), not mean 0.75
    assert summary['recall'] == 1.0
    assert scores.per_image['b']['pred_area'] == pytest.approx(100 * 8 / 36)


def test_removal_and_addition():
    # Before: three separate 1x1 regions. After: one pixel in region 1 and one pixel elsewhere.
    before = box((5, 9), (0, 0, 0, 0), (0, 0, 4, 4), (0, 0, 8, 8))
    after = box((5, 9), (0, 0, 0, 0), (4, 4, 4, 4))
    assert removal_counts(before, after) == (2, 3)
    assert has_addition(before, after)
    assert not has_addition(before, before & after)
    comparison = FinetuneComparison()
    row = comparison.add('a', before, after)
    assert row['removal_rate'] == pytest.approx(200 / 3)
    assert row['added'] == 1
    # Second image: one region, all removed, nothing added.
    comparison.add('b', box((5, 9), (1, 2, 1, 2)), np.zeros((5, 9), bool))
    summary = comparison.summary()
    assert summary['removal_rate'] == pytest.approx(75.0)  # pooled 3 of 4 regions
    assert summary['addition_rate'] == pytest.approx(50.0)  # 1 of 2 images
    assert summary['area_before'] == pytest.approx(100 * (3 / 45 + 4 / 45) / 2)


def test_removal_when_nothing_detected_before():
    empty = np.zeros((4, 4), bool)
    assert FinetuneComparison().add('x', empty, empty)['removal_rate'] == 100.0
    row = FinetuneComparison().add('x', empty, box((4, 4), (0, 0, 0, 0)))
    assert (row['removal_rate'], row['added']) == (0.0, 1)


def test_shape_mismatch_and_bad_p():
    with pytest.raises(ValueError, match='shapes differ'):
        iou(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match='overlap fraction'):
        covered_regions(np.zeros((3, 3)), np.zeros((3, 3)), 1.5)


def test_align_to_release_valid_mode():
    gt = np.zeros((30, 40), bool)
    gt[5:-5, 5:-5] = True
    assert align_to(gt, (20, 30), 'gt.png').all()
    with pytest.raises(DesraInputError, match='gt.png'):
        align_to(gt, (21, 30), 'gt.png')


def test_evaluate_and_compare_commands(tmp_path, capsys):
    pred, gt, after = (tmp_path / d for d in ('pred', 'gt', 'after'))
    # Image a: exact hit. Image b: the b case of test_dataset_scores_pool_regions_and_average_iou.
    # Image c only in pred: not scored.
    write_mask(str(pred / 'a.png'), box((6, 6), (0, 1, 0, 1)))
    write_mask(str(gt / 'a.png'), box((6, 6), (0, 1, 0, 1)))
    write_mask(str(pred / 'b.png'), box((6, 6), (0, 1, 0, 1), (4, 5, 4, 5)))
    write_mask(str(gt / 'b.png'), box((6, 6), (0, 1, 0, 1)))
    write_mask(str(pred / 'c.png'), box((6, 6), (0, 1, 0, 1)))
    out_json = tmp_path / 'scores.json'
    assert main(['evaluate', '--pred', str(pred), '--gt', str(gt), '--json', str(out_json), '--per-image']) == 0
    captured = capsys.readouterr()
    assert 'mean (2 images)' in captured.out and '75.0000' in captured.out and '0.6667' in captured.out
    assert 'missing from --gt' in captured.err and 'c' in captured.err
    data = json.loads(out_json.read_text())
    assert set(data['per_image']) == {'a', 'b'}
    assert data['mean']['iou'] == pytest.approx(75.0)
    assert data['per_image']['b']['precision'] == 0.5

    # Fine-tuned detections: a is cleared; b keeps its false region only.
    write_mask(str(after / 'a.png'), np.zeros((6, 6), bool))
    write_mask(str(after / 'b.png'), box((6, 6), (4, 5, 4, 5)))
    cmp_json = tmp_path / 'cmp.json'
    assert main(['compare', '--before',
                 str(pred), '--after',
                 str(after), '--gt',
                 str(gt), '--json',
                 str(cmp_json)]) == 0
    summary = json.loads(cmp_json.read_text())['summary']
    # Regions before: a 1, b 2 -> 3; removed: a's, b's first -> 2 of 3. No pixel of after outside before.
    assert summary['removal_rate'] == pytest.approx(200 / 3)
    assert summary['addition_rate'] == 0.0
    assert summary['iou_before'] == pytest.approx(75.0)
    assert summary['iou_after'] == pytest.approx(0.0)
    assert summary['area_after'] == pytest.approx(100 * (0 + 4 / 36) / 2)


def test_evaluate_errors(tmp_path, capsys):
    (tmp_path / 'p').mkdir()
    write_mask(str(tmp_path / 'p' / 'a.png'), np.zeros((6, 6), bool))
    write_mask(str(tmp_path / 'g' / 'a.png'), np.zeros((7, 6), bool))
    assert main(['evaluate', '--pred', str(tmp_path / 'p'), '--gt', str(tmp_path / 'g')]) == 1
    assert 'a.png' in capsys.readouterr().err
    assert main(['evaluate', '--pred', str(tmp_path / 'p'), '--gt', str(tmp_path / 'nowhere')]) == 2
    assert 'nowhere: --gt is not a folder' in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'x.json')
