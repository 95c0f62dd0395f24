"""The mmseg segmenter backend with a randomly initialised SegFormer mit-b0 (no download, CPU)."""
import os.path as osp

import numpy as np
import pytest
import torch

from desra_basicsr.constants import SEGFORMER_CHECKPOINT_NAME
from desra_basicsr.detection import DeSRADetector, MorphologyConfig, build_segmenter
from desra_basicsr.detection.mmseg_segmenter import MMSegSegmenter, _resize_argmax, default_config_path
from desra_basicsr.errors import DesraInputError
from helpers.mmseg import random_checkpoint, write_small_config
from helpers.photos import skimage_photo_bgr


@pytest.fixture(scope='module')
def b0(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('segformer'))
    config = write_small_config(folder)
    return config, random_checkpoint(config, osp.join(folder, 'b0_random.pth')), folder


def test_default_config_is_the_b5_640_one_in_the_wheel():
    path = default_config_path()
    assert osp.isfile(path) and path.endswith('segformer_mit-b5_8xb2-160k_ade20k-640x640.py')


def test_random_b0_segments_any_size_at_image_size(b0):
    config, checkpoint, _ = b0
    seg = build_segmenter('mmseg', config=config, checkpoint=checkpoint, device='cpu')
    assert isinstance(seg, MMSegSegmenter) and seg.num_classes == 150 and seg.test_scale == (128, 64)
    assert seg.class_names[2] == 'sky'
    for shape in [(37, 53), (96, 40)]:
        img = skimage_photo_bgr('chelsea')[:shape[0], :shape[1]]
        labels = seg.segment(img)
        assert labels.shape == shape and labels.dtype == np.int64
        assert labels.min() >= 0 and labels.max() < 150


def test_detector_with_mmseg_backend_returns_labels_and_adjusted_map(b0):
    config, checkpoint, _ = b0
    seg = build_segmenter('mmseg', config=config, checkpoint=checkpoint)
    photo = skimage_photo_bgr('astronaut')[:80, :96]
    gan = np.clip(photo.astype(int) + np.random.default_rng(0).integers(-60, 61, photo.shape), 0, 255)
    result = DeSRADetector(segmenter=seg, morphology=MorphologyConfig(min_area=100)).detect(photo, gan.astype(np.uint8))
    assert result.labels.shape == (80, 96)
    weights = DeSRADetector(segmenter=seg).class_weights.weights
    np.testing.assert_allclose(result.adjusted, np.clip(result.d_map * weights[result.labels], 0, 1), rtol=1e-6)
    assert (result.adjusted >= result.d_map - 1e-7).all()  # release weights are all >= 1


@pytest.mark.parametrize('segment_input', ['gan', 'mse'])
def test_segmenter_sees_the_chosen_image(b0, segment_input):
    """Step 3 segments the GAN-SR output (the release), or the MSE-SR output with ``segment_input='mse'``."""
    config, checkpoint, _ = b0
    seg = build_segmenter('mmseg', config=config, checkpoint=checkpoint)
    seen = []
    original = seg.segment
    seg.segment = lambda img: seen.append(img.copy()) or original(img)
    mse = skimage_photo_bgr('astronaut')[:48, :64]
    gan = np.ascontiguousarray(mse[:, ::-1])
    DeSRADetector(segmenter=seg, segment_input=segment_input).detect(mse, gan)
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], gan if segment_input == 'gan' else mse)


def test_detect_tensors_segments_bgr_like_detect(b0):
    """Batched detection on RGB tensors hands the segmenter the same BGR image as ``detect`` (labels equal)."""
    config, checkpoint, _ = b0
    detector = DeSRADetector(segmenter=build_segmenter('mmseg', config=config, checkpoint=checkpoint),
                             morphology=MorphologyConfig(min_area=50))
    mse = skimage_photo_bgr('coffee')[:64, :80]
    gan = np.clip(mse.astype(int) + np.random.default_rng(0).integers(-60, 61, mse.shape), 0, 255).astype(np.uint8)
    to_t = lambda img: torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    single = detector.detect(mse, gan)
    (batched, ) = detector.detect_tensors(to_t(mse), to_t(gan))
    assert (single.labels != detector.segmenter.segment(np.ascontiguousarray(gan[:, :, ::-1]))).mean() > 0.05
    np.testing.assert_array_equal(batched.labels, single.labels)
    np.testing.assert_array_equal(batched.mask, single.mask)


@pytest.mark.parametrize('shape, size', [((5, 7, 9), (23, 31)), ((3, 10, 10), (7, 5)), ((150, 20, 24), (97, 131))])
def test_resize_argmax_equals_full_bilinear(shape, size):
    torch.manual_seed(0)
    logits = torch.randn(*shape)
    full = torch.nn.functional.interpolate(logits[None], size=size, mode='bilinear', align_corners=False)[0]
    # equal up to float rounding at exact near-ties of two interpolated logits
    assert (_resize_argmax(logits, *size) != full.argmax(0).numpy()).mean() < 1e-3


def test_missing_and_mismatched_checkpoints(b0, tmp_path):
    config, checkpoint, folder = b0
    with pytest.raises(DesraInputError, match=SEGFORMER_CHECKPOINT_NAME):
        build_segmenter('mmseg', config=None, checkpoint=None)
    absent = str(tmp_path / 'segformer.pth')
    with pytest.raises(DesraInputError, match=SEGFORMER_CHECKPOINT_NAME) as err:
        build_segmenter('mmseg', checkpoint=absent)
    assert str(err.value).startswith(absent)
    with pytest.raises(DesraInputError, match='config file not found'):
        build_segmenter('mmseg', config=str(tmp_path / 'none.py'), checkpoint=checkpoint)
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint')
    with pytest.raises(DesraInputError, match='corrupt.pth: not a checkpoint'):
        build_segmenter('mmseg', config=config, checkpoint=str(corrupt))
    config19 = write_small_config(folder, num_classes=19)
    with pytest.raises(DesraInputError, match='shape'):
        build_segmenter('mmseg', config=config19, checkpoint=checkpoint)
    checkpoint19 = random_checkpoint(config19, str(tmp_path / 'b0_19.pth'))
    seg19 = build_segmenter('mmseg', config=config19, checkpoint=checkpoint19)
    with pytest.raises(DesraInputError, match='unknown class names'):
        DeSRADetector(segmenter=seg19)
    with pytest.raises(DesraInputError, match='does not fit EncoderDecoder: [0-9]+ missing keys'):
        build_segmenter('mmseg', config=default_config_path(), checkpoint=checkpoint)
