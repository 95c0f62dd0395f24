"""PseudoGTPairedDataset at GPU speed: crop first, skip unused keys, keep the decoded set in shared memory.

Speed is measured in ``benchmarks/bench_finetune.py``; these tests check that the faster paths give the same
samples as the straightforward full-image computation.
"""
import os.path as osp
import random
import shutil

import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import img2tensor

import desra_basicsr  # noqa: F401  (registers the plugin)
from desra_basicsr.data.artifact_mask_transform import ArtifactMaskTransform
from desra_basicsr.image_io import read_image, read_mask
from helpers.finetune import make_split

NAMES = ('astronaut', 'chelsea', 'coffee')


@pytest.fixture(scope='module')
def split(tmp_path_factory):
    """Three real-photo samples, HR 96x96 / LR 24x24, with artifact masks."""
    return make_split(str(tmp_path_factory.mktemp('loading_split')), 96, keys=('lq', 'mse', 'gan', 'mask'))


def options(split, phase='train', **kwargs):
    opt = dict(name='t', type='PseudoGTPairedDataset', dataroot_lq=split['lq'], dataroot_mse=split['mse'],
               dataroot_gan=split['gan'], dataroot_mask=split['mask'], io_backend=dict(type='disk'), gt_size=32,
               use_hflip=True, use_rot=True, scale=4, phase=phase)
    opt.update(kwargs)
    return opt


def reference_sample(split, name, transform, gt_size=32):
    """The full-image computation: float images and weight at full size, BasicSR's crop and augment, merge."""
    mse, gan, lq = (read_image(osp.join(split[key], f'{name}.png')).astype(np.float32) / 255.
                    for key in ('mse', 'gan', 'lq'))
    weight = transform.weight(read_mask(osp.join(split['mask'], f'{name}.png')))[:, :, None]
    hrs, lq = paired_random_crop([mse, gan, weight], lq, gt_size, 4, name)
    mse, gan, weight, lq = augment(hrs + [lq], True, True)
    gt = transform.merge(mse, gan, weight)
    lq_t, gt_t = img2tensor([lq, gt], bgr2rgb=True, float32=True)
    return lq_t, gt_t, torch.from_numpy(np.ascontiguousarray(weight.transpose(2, 0, 1)))


def test_training_samples_skip_mse_and_mask_unless_asked(split):
    train = build_dataset(options(split))
    assert {k for k in train[0] if not k.endswith('_path')} == {'lq', 'gt'}
    asked = build_dataset(options(split, return_mask=True, return_mse=True))
    assert {k for k in asked[0] if not k.endswith('_path')} == {'lq', 'gt', 'mask', 'mse'}
    val = build_dataset(options(split, phase='val'))
    assert {k for k in val[0] if not k.endswith('_path')} == {'lq', 'gt', 'mask', 'mse'}


@pytest.mark.parametrize('refine', [dict(), dict(dilate=3, feather=5)], ids=['paper', 'dilate_feather'])
def test_crop_first_equals_the_full_image_computation(split, refine):
    dataset = build_dataset(options(split, return_mask=True, transform=dict(type='ArtifactMaskTransform', **refine)))
    transform = ArtifactMaskTransform(**refine)
    assert transform.support == (8 if refine else 0)
    crossed = 0
    for seed in range(12):
        index = seed % len(NAMES)
        random.seed(seed)
        item = dataset[index]
        random.seed(seed)
        lq, gt, weight = reference_sample(split, NAMES[index], transform)
        assert torch.equal(item['lq'], lq) and torch.equal(item['gt'], gt) and torch.equal(item['mask'], weight)
        crossed += bool(0 < weight.mean() < 1)
    assert crossed  # some crops cut through a mask edge, where the widened window matters


def test_keep_in_memory_is_shared_and_read_by_spawned_workers_without_files(split, tmp_path):
    copy = {key: shutil.copytree(folder, str(tmp_path / key)) for key, folder in split.items()}
    cached = build_dataset(options(copy, phase='val', keep_in_memory=True))
    assert all(t.is_shared() for sample in cached.cache for t in sample.values())
    for folder in copy.values():
        shutil.rmtree(folder)  # from now on only the in-memory set can serve samples
    reference = build_dataset(options(split, phase='val'))
    loader = torch.utils.data.DataLoader(cached, batch_size=1, num_workers=1, multiprocessing_context='spawn',
                                         persistent_workers=True)
    for _epoch in range(2):
        for index, batch in enumerate(loader):
            want = reference[index]
            for key in ('lq', 'gt', 'mse', 'mask'):
                assert torch.equal(batch[key][0], want[key]), key
    train = build_dataset(options(split, keep_in_memory=True))
    before = [t.clone() for sample in train.cache for t in sample.values()]
    for index in range(len(train) * 4):
        train[index % len(train)]  # crops are flipped and rotated in place: the shared set must not change
    assert all(torch.equal(a, b) for a, b in zip(before, (t for sample in train.cache for t in sample.values())))
