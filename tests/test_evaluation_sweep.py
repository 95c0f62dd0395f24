"""Method / threshold sweep of `desra evaluate` on a small real-photo set, and the LDL baseline map."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from desra_basicsr.commands import main
from desra_basicsr.detection.class_weights import ADE20K_CLASSES, load_class_weights
from desra_basicsr.detection.ldl_baseline import LDLDetector, ldl_artifact_map
from desra_basicsr.detection.methods import METHODS, build_detector
from desra_basicsr.detection.morphology import MorphologyConfig
from desra_basicsr.detection.segmenters import Segmenter
from desra_basicsr.evaluation.sweep import build_entries, run_entries
from desra_basicsr.image_io import write_image, write_mask
from helpers.photos import skimage_photo_bgr

SIZE, SQUARE = 256, 96


def ldl_reference(y_mse, y_gan, ksize=7):
    """LDL's own torch code (``get_refined_artifact_map`` without the EMA term), MSE-SR as the reference."""
    to_t = lambda img: torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255  # noqa: E731
    residual = torch.sum(torch.abs(to_t(y_mse) - to_t(y_gan)), 1, keepdim=True)
    patch = torch.var(residual, dim=(-1, -2, -3), keepdim=True)**(1 / 5)
    pad = (ksize - 1) // 2
    unfolded = F.pad(residual, [pad] * 4, mode='reflect').unfold(2, ksize, 1).unfold(3, ksize, 1)
    pixel = torch.var(unfolded, dim=(-1, -2), unbiased=True, keepdim=True).squeeze(-1).squeeze(-1)
    return (patch * pixel)[0, 0].numpy()


def test_ldl_map_matches_ldl_code():
    rng = np.random.default_rng(0)
    y_mse = rng.integers(0, 256, (21, 30, 3), dtype=np.uint8)
    y_gan = np.clip(y_mse.astype(int) + rng.integers(-30, 31, y_mse.shape), 0, 255).astype(np.uint8)
    ours = ldl_artifact_map(y_mse, y_gan)
    assert ours.shape == (21, 30) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ldl_reference(y_mse, y_gan), rtol=1e-5, atol=1e-7)
    assert not LDLDetector(0.001).detect(y_mse, y_mse).mask.any()  # identical outputs: zero map
    result = LDLDetector(0.005).detect(y_mse, y_gan)
    np.testing.assert_array_equal(result.mask, ours > 0.005)
    with pytest.raises(ValueError, match='shapes differ'):
        ldl_artifact_map(y_mse, y_gan[:-1])


def test_ldl_methods_registered():
    for t in ('0.01', '0.005', '0.001'):
        assert not METHODS[f'ldl-{t}'].semantics
        assert build_detector(f'ldl-{t}').threshold == float(t)


def make_photo_set(root, names=('astronaut', 'chelsea', 'coffee', 'rocket')):
    """MSE-SR: blurred real photos. GAN-SR: sharpened everywhere (plausible GAN detail) plus a painted
    high-frequency pattern in the photo's smoothest 96x96 square, which is the ground-truth artifact."""
    for name in names:
        photo = cv2.resize(skimage_photo_bgr(name), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        mse = cv2.GaussianBlur(photo, (0, 0), 1.0)
        gan = np.clip(mse * 1.6 - cv2.GaussianBlur(mse, (0, 0), 2.0) * 0.6, 0, 255)
        gray = cv2.cvtColor(mse, cv2.COLOR_BGR2GRAY).astype(np.float32)
        var = cv2.boxFilter(gray * gray, -1, (SQUARE, SQUARE)) - cv2.boxFilter(gray, -1, (SQUARE, SQUARE))**2
        h = SQUARE // 2
        y0, x0 = np.unravel_index(np.argmin(var[h:-h, h:-h]), var[h:-h, h:-h].shape)
        yy, xx = np.mgrid[0:SQUARE, 0:SQUARE]
        pattern = 35 * np.sign(np.sin(yy * 1.3) * np.sin(xx * 1.7))
        gan[y0:y0 + SQUARE, x0:x0 + SQUARE] += pattern[:, :, None]
        gt = np.zeros((SIZE, SIZE), bool)
        gt[y0:y0 + SQUARE, x0:x0 + SQUARE] = True
        write_image(osp.join(root, 'mse', f'{name}.png'), mse)
        write_image(osp.join(root, 'gan', f'{name}.png'), np.clip(gan, 0, 255).astype(np.uint8))
        write_mask(osp.join(root, 'gt', f'{name}.png'), gt)
    return [osp.join(root, d) for d in ('mse', 'gan', 'gt')]


def test_sweep_on_real_photos(tmp_path, capsys):
    mse, gan, gt = make_photo_set(str(tmp_path))
    out_json = tmp_path / 'sweep.json'
    rc = main([
        'evaluate', '--sweep', '--mse', mse, '--gan', gan, '--gt', gt, '--methods', 'desra-no-semantics',
        'desra-no-norm', 'ldl-0.005', 'ldl-0.001', '--thresholds', '0.6', '0.7', '--json',
        str(out_json)
    ])
    assert rc == 0
    out = capsys.readouterr().out
    assert 'desra-no-semantics' in out and 'ldl-0.001' in out
    results = json.loads(out_json.read_text())['results']
    # DeSRA methods at each threshold, LDL baselines once each.
    assert [(r['method'], r['threshold']) for r in results] == [('desra-no-semantics', 0.6),
                                                                ('desra-no-semantics', 0.7), ('desra-no-norm', 0.6),
                                                                ('desra-no-norm', 0.7), ('ldl-0.005', None),
                                                                ('ldl-0.001', None)]
    score = {(r['method'], r['threshold']): r['mean'] for r in results}
    desra = score[('desra-no-semantics', 0.7)]
    assert desra['images'] == 4
    assert desra['iou'] >= 50 and desra['recall'] == 1.0 and desra['precision'] >= 0.75
    # The residual-variance baseline also fires on the GAN's sharpened edges: many more regions, lower precision.
    ldl = score[('ldl-0.001', None)]
    assert ldl['n_pred_regions'] > 2 * desra['n_pred_regions'] and ldl['precision'] < desra['precision']
    assert ldl['iou'] < desra['iou']
    # The sweep's numbers are the ones `desra detect`-style masks give through score mode.
    det = build_detector('desra-no-semantics', morphology=MorphologyConfig())
    from desra_basicsr.image_io import read_image
    for name in ('astronaut', 'rocket'):
        mask = det.detect(read_image(osp.join(mse, f'{name}.png')), read_image(osp.join(gan, f'{name}.png'))).mask
        write_mask(str(tmp_path / 'pred' / f'{name}.png'), mask)
    assert main(['evaluate', '--pred', str(tmp_path / 'pred'), '--gt', gt, '--json', str(tmp_path / 's.json')]) == 0
    per_image = json.loads((tmp_path / 's.json').read_text())['per_image']
    sweep_rows = results[1]['per_image']
    for name in ('astronaut', 'rocket'):
        assert per_image[name]['iou'] == pytest.approx(sweep_rows[name]['iou'])


def test_sweep_bad_input(tmp_path, capsys):
    mse, gan, gt = make_photo_set(str(tmp_path))
    assert main(['evaluate', '--sweep', '--mse', mse, '--gan', gan, '--gt', gt, '--methods', 'nope']) == 2
    assert 'unknown' in capsys.readouterr().err
    assert main(['evaluate', '--sweep', '--gan', gan, '--gt', gt]) == 2
    assert 'needs --mse and --gan' in capsys.readouterr().err


@pytest.mark.parametrize('case', ['sizes', 'tiny'])
def test_sweep_names_the_file_of_a_pair_it_cannot_detect(tmp_path, capsys, case):
    mse, gan, gt = make_photo_set(str(tmp_path), names=('chelsea', ))
    mse_path, gan_path = osp.join(mse, 'chelsea.png'), osp.join(gan, 'chelsea.png')
    if case == 'sizes':
        write_image(gan_path, cv2.imread(gan_path)[:80, :96])
        write_mask(osp.join(gt, 'chelsea.png'), np.zeros((80, 96), bool))
        expected = f'{gan_path}: size 96x80 differs from its MSE-SR partner {mse_path} ({SIZE}x{SIZE})'
    else:
        for path in (mse_path, gan_path):
            write_image(path, cv2.imread(path)[:6, :6])
        write_mask(osp.join(gt, 'chelsea.png'), np.zeros((6, 6), bool))
        expected = f'{gan_path}: image size 6x6 is smaller than the 11x11 indicator window'
    assert main(['evaluate', '--sweep', '--mse', mse, '--gan', gan, '--gt', gt, '--methods', 'desra', 'ldl-0.01']) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err and f'error: {expected}\n' in err


class CountingSkySegmenter(Segmenter):
    """Labels every pixel 'sky' and counts its calls."""
    name = 'counting'

    def __init__(self):
        super().__init__(ADE20K_CLASSES, 'counting segmenter')
        self.calls = 0

    def segment(self, img):
        self.calls += 1
        return np.full(img.shape[:2], ADE20K_CLASSES.index('sky'), np.int64)


def test_sweep_segments_each_image_once(tmp_path):
    mse, gan, gt = make_photo_set(str(tmp_path))
    seg = CountingSkySegmenter()
    entries = build_entries(['desra', 'desra-no-norm', 'desra-no-semantics'], [0.6, 0.7], seg)
    triples = [tuple(osp.join(d, f'{n}.png') for d in (mse, gan, gt)) for n in ('chelsea', 'rocket')]
    run_entries(entries, triples)
    assert seg.calls == 2  # once per image, shared by 2 semantic methods x 2 thresholds
    # The release table gives sky weight 1.0: DeSRA with an all-sky segmentation equals no semantics.
    by_key = {(e.method, e.threshold): e.scores.summary() for e in entries}
    assert by_key[('desra', 0.7)] == by_key[('desra-no-semantics', 0.7)]


@pytest.mark.slow
def test_calibrate_and_sweep_with_random_segformer(tmp_path, capsys):
    from helpers.mmseg import random_checkpoint, write_small_config
    config = write_small_config(str(tmp_path))
    checkpoint = random_checkpoint(config, str(tmp_path / 'b0.pth'))
    names = ('chelsea', 'rocket')
    mse, gan, gt = make_photo_set(str(tmp_path / 'photos'), names)
    out = tmp_path / 'weights.yml'
    assert main([
        'calibrate', '--mse', mse, '--gan', gan, '--seg-config', config, '--seg-checkpoint', checkpoint, '--out',
        str(out), '--released-format',
        str(tmp_path / 'weights.txt')
    ]) == 0
    table = load_class_weights(str(out))
    assert load_class_weights(str(tmp_path / 'weights.txt')).num_classes == 150
    # Classes the random model predicted got 1 / (85th percentile of D over their pixels); recompute directly.
    from desra_basicsr.detection.indicator import indicator_numpy
    from desra_basicsr.detection.segmenters import build_segmenter
    from desra_basicsr.image_io import read_image
    seg = build_segmenter('mmseg', config=config, checkpoint=checkpoint)
    d_values, labels = [], []
    for name in names:
        y_mse, y_gan = read_image(osp.join(mse, f'{name}.png')), read_image(osp.join(gan, f'{name}.png'))
        d_values.append(indicator_numpy(y_mse, y_gan).ravel())
        labels.append(seg.segment(y_gan).ravel())
    d_values, labels = np.concatenate(d_values), np.concatenate(labels)
    seen = np.unique(labels)
    for k in seen:
        expected = 1 / max(np.percentile(d_values[labels == k], 85), 0.05)
        assert table.weights[k] == pytest.approx(expected, rel=5e-3)
    unseen = [k for k in range(150) if k not in seen]
    assert all(table.weights[k] == 1.0 for k in unseen)
    # The calibrated table drives the sweep's semantic methods.
    assert main([
        'evaluate', '--sweep', '--mse', mse, '--gan', gan, '--gt', gt, '--methods', 'desra', '--seg-config', config,
        '--seg-checkpoint', checkpoint, '--class-table',
        str(out)
    ]) == 0
    assert 'desra' in capsys.readouterr().out
