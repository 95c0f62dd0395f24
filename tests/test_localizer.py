"""Artifact localiser: offline two-class configs, training data checks, a few training iterations and prediction."""
import os
import os.path as osp
import typing

import cv2
import numpy as np
import pytest
from scipy import ndimage

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.localizer.config import ARCHS, DataSource, build_train_config
from desra_basicsr.localizer.dataset import (MAX_BALANCED_ARTIFACT_WEIGHT, artifact_fraction, balanced_artifact_weight,
                                             list_artifact_pairs, list_clean_images)
from helpers.localizer import make_artifact_data
from helpers.photos import jpeg_with_orientation, skimage_photo_bgr


@pytest.mark.parametrize('arch', sorted(ARCHS))
def test_config_is_offline_two_class_and_plain_bn(arch, tmp_path):
    cfg = build_train_config(arch, [DataSource('img', 'mask')], str(tmp_path / 'work'), iters=10, batch_size=2,
                             crop_size=96, artifact_weight=3.5)
    path = str(tmp_path / 'cfg.py')
    cfg.dump(path)
    text = open(path).read()
    assert 'http' not in text and 'open-mmlab://' not in text  # nothing to download
    assert 'SyncBN' not in text
    assert cfg.model.pretrained is None
    auxiliary = cfg.model.get('auxiliary_head') or []
    heads = [cfg.model.decode_head] + (auxiliary if isinstance(auxiliary, list) else [auxiliary])
    assert all(head.num_classes == 2 for head in heads)
    # Inference windows of the training crop's size: the image-pooling branch / attention sees the context it
    # learnt from (larger windows made the demo's localiser under-predict).
    assert cfg.model.test_cfg.mode == 'slide'
    assert tuple(cfg.model.test_cfg.crop_size) == (96, 96) and tuple(cfg.model.test_cfg.stride) == (72, 72)
    for head in heads:
        losses = head.loss_decode if isinstance(head.loss_decode, list) else [head.loss_decode]
        assert all(loss.class_weight == [1.0, 3.5] and loss.avg_non_ignore and not loss.use_sigmoid for loss in losses)


def test_artifact_weight_balances_the_classes_of_the_masks(tmp_path):
    data = make_artifact_data(str(tmp_path), names=('chelsea', 'coffee'))  # 32x32 artifact squares in 64x64
    masks = sorted(osp.join(data['mask'], f) for f in os.listdir(data['mask']))
    assert balanced_artifact_weight(artifact_fraction(masks)) == 1.732  # sqrt((4096 - 1024) / 1024)
    cfg = build_train_config('segformer-mit-b0', [DataSource(data['img'], data['mask'])], str(tmp_path / 'work'),
                             iters=10, artifact_weight=1.732)
    assert cfg.model.decode_head.loss_decode.class_weight == [1.0, 1.732]
    assert cfg.localizer.artifact_weight == 1.732
    cv2.imwrite(masks[0], np.zeros((64, 64), np.uint8))
    cv2.imwrite(masks[1], np.zeros((64, 64), np.uint8))
    assert balanced_artifact_weight(artifact_fraction(masks)) == 1.0  # no artifact: unweighted
    mask = np.zeros((64, 64), np.uint8)
    mask[0, 0] = 255
    cv2.imwrite(masks[0], mask)
    assert balanced_artifact_weight(artifact_fraction(masks)) == MAX_BALANCED_ARTIFACT_WEIGHT  # sqrt(8191) capped


def test_settings_refuse_unusable_values(tmp_path):
    from desra_basicsr.jobs.localizer_train import LocalizerTrainSettings
    from desra_basicsr.localizer.config import Arch
    assert typing.get_args(Arch) == tuple(ARCHS)  # the settings' type lists every architecture
    paths = dict(gan='img', masks='mask', out=str(tmp_path))
    with pytest.raises(DesraSettingsError, match='--batch-size 1: must be >= 2 for deeplabv3plus-r18'):
        LocalizerTrainSettings(**paths, batch_size=1)
    with pytest.raises(DesraSettingsError, match='--batch-size 1: must be >= 2 for fast-scnn'):
        LocalizerTrainSettings(**paths, arch='fast-scnn', batch_size=1)
    assert LocalizerTrainSettings(**paths, arch='segformer-mit-b0', batch_size=1).batch_size == 1
    with pytest.raises(DesraSettingsError, match='--arch unet: choose from'):
        LocalizerTrainSettings(**paths, arch='unet')
    for name, value in (('iters', 0), ('lr', float('nan')), ('lr', 0.0), ('num_workers', -1), ('crop_size', 10000),
                        ('crop_size', 16), ('artifact_weight', 0.0), ('seed', -1), ('checkpoint_interval', 0)):
        with pytest.raises(DesraSettingsError, match=f'--{name.replace("_", "-")} '):
            LocalizerTrainSettings(**paths, **{name: value})
    with pytest.raises(DesraSettingsError, match='--gan'):
        LocalizerTrainSettings(gan='', masks='mask', out='out')
    assert LocalizerTrainSettings(**paths).gan == osp.abspath('img')
    with pytest.raises(ValueError, match='unknown localiser architecture'):
        build_train_config('unet', [DataSource('img', 'mask')], str(tmp_path), iters=10, artifact_weight=1.0)


def test_training_pairs_are_checked(tmp_path, capsys):
    data = make_artifact_data(str(tmp_path), names=('chelsea', 'coffee'))
    assert [osp.basename(p[0]) for p in list_artifact_pairs(data['img'], data['mask'])] == ['chelsea.png', 'coffee.png']
    os.remove(osp.join(data['mask'], 'coffee.png'))
    with pytest.raises(DesraInputError, match='coffee: no partner file in .*mask'):
        list_artifact_pairs(data['img'], data['mask'])
    cv2.imwrite(osp.join(data['mask'], 'coffee.png'), np.zeros((32, 64), np.uint8))
    with pytest.raises(DesraInputError, match=r'coffee\.png: size 64x32 differs from its image'):
        list_artifact_pairs(data['img'], data['mask'])
    cv2.imwrite(osp.join(data['mask'], 'coffee.png'), np.full((64, 64), 128, np.uint8))
    assert len(list_artifact_pairs(data['img'], data['mask'])) == 2  # thresholded, as every command reads masks
    assert 'coffee.png: mask is not binary' in capsys.readouterr().err
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 2] = 255
    cv2.imwrite(osp.join(data['mask'], 'coffee.png'), red)  # the package's mask rule: an ambiguous colour mask
    with pytest.raises(DesraInputError, match=r'coffee\.png: colour mask whose red, green and blue channels differ'):
        list_artifact_pairs(data['img'], data['mask'])
    with pytest.raises(DesraInputError, match='not a directory'):
        list_artifact_pairs(str(tmp_path / 'absent'), data['mask'])


def test_clean_images_are_trained_on_as_all_clean(tmp_path):
    from mmengine.dataset import Compose
    from mmseg.utils import register_all_modules

    from desra_basicsr.localizer.dataset import DesraArtifactMaskDataset
    register_all_modules(init_default_scope=True)  # as training does: mmseg's registries by default
    data = make_artifact_data(str(tmp_path), names=('chelsea', 'coffee'))
    clean = tmp_path / 'clean'
    clean.mkdir()
    for name in ('chelsea', 'coffee'):  # the same photos without the painted noise
        cv2.imwrite(str(clean / f'{name}.png'), np.ascontiguousarray(skimage_photo_bgr(name)[:64, :64]))
    cfg = build_train_config('segformer-mit-b0', [DataSource(data['img'], data['mask']), DataSource(str(clean))],
                             str(tmp_path / 'work'), iters=10, artifact_weight=1.0)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadArtifactMask')]
    dataset = [DesraArtifactMaskDataset(data['img'], data['mask'], lazy_init=False, pipeline=pipeline),
               DesraArtifactMaskDataset(str(clean), lazy_init=False, pipeline=pipeline)]
    assert [len(part) for part in dataset] == [2, 2]
    load = Compose(cfg.train_dataloader.dataset.datasets[1].pipeline[:2])
    labels = [load(part.get_data_info(i))['gt_seg_map'] for part in dataset for i in range(2)]
    assert [int(label.max()) for label in labels] == [1, 1, 0, 0]  # painted squares are artifacts; clean all 0
    assert all(label.shape == (64, 64) for label in labels)
    (clean / 'broken.png').write_bytes(b'not an image')
    with pytest.raises(DesraInputError, match=r'broken\.png: cannot decode image'):
        list_clean_images(str(clean))


def test_localizer_trains_and_predicts_a_mask_of_the_image_size(tmp_path):
    from desra_basicsr.localizer.predictor import ArtifactLocalizer, LocalizerDetector, localizer_morphology
    from desra_basicsr.localizer.training import train_localizer
    data = make_artifact_data(str(tmp_path / 'data'))
    out = str(tmp_path / 'loc')
    train = lambda iters: train_localizer(  # noqa: E731
        build_train_config('segformer-mit-b0', [DataSource(data['img'], data['mask'])], osp.join(out, 'work_dir'),
                           iters=iters, artifact_weight=2.0, batch_size=2, crop_size=48, num_workers=0), out)
    info = train(3)
    assert osp.isfile(info['config']) and osp.isfile(info['checkpoint'])
    assert info['images'] == 4 and info['resumed_from'] is None and np.isfinite(info['final_loss'])
    localizer = ArtifactLocalizer(info['config'], info['checkpoint'])
    img = np.ascontiguousarray(skimage_photo_bgr('coffee')[:70, :90])  # not the training size, not square
    prob = localizer.probability(img)
    assert prob.shape == (70, 90) and prob.dtype == np.float32
    assert 0 <= prob.min() and prob.max() <= 1
    result = LocalizerDetector(localizer, localizer_morphology(min_area=0), prob_threshold=0.5).detect(None, img)
    assert result.mask.shape == (70, 90) and result.mask.dtype == bool
    # No erosion or dilation: the thresholded probability with its holes filled.
    np.testing.assert_array_equal(result.mask, ndimage.binary_fill_holes(prob >= 0.5, structure=np.ones((3, 3))))
    # Started again with a longer schedule, training resumes from its last checkpoint.
    again = train(4)
    assert again['resumed_from'] is not None and again['resumed_from'].endswith('iter_3.pth')
    # --init-checkpoint: a new run starts from those weights (a vanishing learning rate keeps them).
    import torch
    start = torch.load(again['checkpoint'], weights_only=True)['state_dict']
    init_out = str(tmp_path / 'init')
    init = train_localizer(
        build_train_config('segformer-mit-b0', [DataSource(data['img'], data['mask'])], osp.join(init_out, 'work_dir'),
                           iters=1, artifact_weight=2.0, batch_size=2, crop_size=48, num_workers=0, lr=1e-12,
                           init_checkpoint=again['checkpoint']),
        init_out)
    tuned = torch.load(init['checkpoint'], weights_only=True)
    assert tuned['meta']['localizer']['init_checkpoint'] == again['checkpoint']
    for key, value in start.items():
        if value.is_floating_point() and 'running' not in key:
            torch.testing.assert_close(tuned['state_dict'][key], value, atol=1e-6, rtol=0)


@pytest.mark.parametrize('arch', ['deeplabv3plus-r18', 'fast-scnn'])
def test_pooled_batchnorm_archs_train_without_compiled_mmcv_ops(arch, tmp_path):
    from desra_basicsr.localizer.predictor import ArtifactLocalizer
    from desra_basicsr.localizer.training import train_localizer
    data = make_artifact_data(str(tmp_path / 'data'), names=('chelsea', 'coffee'))
    cfg = build_train_config(arch, [DataSource(data['img'], data['mask'])], str(tmp_path / 'work'),
                             iters=1, artifact_weight=2.0, batch_size=2, crop_size=48, num_workers=0)
    info = train_localizer(cfg, str(tmp_path / 'loc'))
    prob = ArtifactLocalizer(info['config'], info['checkpoint']).probability(skimage_photo_bgr('chelsea')[:40, :56])
    assert prob.shape == (40, 56)


def test_training_loads_a_tagged_jpeg_as_stored_like_its_mask(tmp_path):
    """A camera JPEG with an EXIF orientation tag: mmcv's default colour read would turn it away from its mask."""
    from mmengine.dataset import Compose
    from mmseg.utils import register_all_modules

    from desra_basicsr.localizer.dataset import DesraArtifactMaskDataset
    register_all_modules(init_default_scope=True)
    (tmp_path / 'gan').mkdir()
    (tmp_path / 'mask').mkdir()
    img = skimage_photo_bgr('rocket')[:48, :80].copy()
    img[:, :40] = 255  # the artifact: the bright left half, as stored
    (tmp_path / 'gan' / 'a.jpg').write_bytes(jpeg_with_orientation(img, 6))
    mask = np.zeros((48, 80), np.uint8)
    mask[:, :40] = 255
    cv2.imwrite(str(tmp_path / 'mask' / 'a.png'), mask)
    pairs = list_artifact_pairs(str(tmp_path / 'gan'), str(tmp_path / 'mask'))  # sizes agree as stored
    assert len(pairs) == 1
    cfg = build_train_config('fast-scnn', [DataSource(str(tmp_path / 'gan'), str(tmp_path / 'mask'))],
                             str(tmp_path / 'work'), iters=10, artifact_weight=1.0)
    load = Compose(cfg.train_dataloader.dataset.datasets[0].pipeline[:2])
    sample = load(DesraArtifactMaskDataset(str(tmp_path / 'gan'), str(tmp_path / 'mask'), lazy_init=False,
                                           pipeline=[]).get_data_info(0))
    assert sample['img'].shape[:2] == sample['gt_seg_map'].shape == (48, 80)
    bright = sample['img'].min(axis=2) > 250
    assert (sample['gt_seg_map'][bright] == 1).all() and (sample['gt_seg_map'][~bright] == 0).mean() > 0.99
