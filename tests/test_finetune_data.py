"""Fine-tuning data: ArtifactMaskTransform, PseudoGTPairedDataset, ``desra pseudo-gt``, ``desra_artifact_ratio``."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.utils.registry import DATASET_REGISTRY, METRIC_REGISTRY

import desra_basicsr  # noqa: F401  (registers the plugin)
from desra_basicsr.commands import main
from desra_basicsr.data.artifact_mask_transform import ArtifactMaskTransform, build_transform
from desra_basicsr.detection import pseudo_gt
from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.registry import TRANSFORM_REGISTRY
from helpers.finetune import artifact_box, make_sample, make_split
from helpers.training import train_env


@pytest.fixture(scope='module')
def split(tmp_path_factory):
    """Three real-photo samples, HR 64x64 / LR 16x16, with masks and precomputed pseudo-GT."""
    return make_split(str(tmp_path_factory.mktemp('finetune_split')), 64)


def dataset_opt(split, phase='train', **kwargs):
    opt = dict(
        name='t',
        type='PseudoGTPairedDataset',
        dataroot_lq=split['lq'],
        dataroot_mse=split['mse'],
        dataroot_gan=split['gan'],
        dataroot_mask=split['mask'],
        io_backend=dict(type='disk'),
        gt_size=32,
        use_hflip=True,
        use_rot=True,
        scale=4,
        phase=phase)
    opt.update(kwargs)
    return opt


def copy_split(split, dst):
    out = {}
    for key, folder in split.items():
        out[key] = osp.join(dst, key)
        shutil.copytree(folder, out[key])
    return out


# ------------------------------------------------------------------------------------------------------ transform
def test_transform_registered_and_built_by_type():
    assert 'ArtifactMaskTransform' in TRANSFORM_REGISTRY
    opt = {'type': 'ArtifactMaskTransform', 'dilate': 2}
    transform = build_transform(opt)
    assert isinstance(transform, ArtifactMaskTransform) and transform.dilate == 2
    assert opt == {'type': 'ArtifactMaskTransform', 'dilate': 2}  # options are not mutated


def test_transform_is_eq10_on_numpy_and_torch():
    sample = make_sample('coffee', 64)
    transform = ArtifactMaskTransform()
    merged = transform(sample['mse'], sample['gan'], sample['mask'])
    np.testing.assert_array_equal(merged, sample['pseudo'])
    to_t = lambda img: torch.from_numpy(img).permute(2, 0, 1).float() / 255  # noqa: E731
    batch_mse = torch.stack([to_t(sample['mse'])] * 2)
    batch_gan = torch.stack([to_t(sample['gan'])] * 2)
    mask = torch.from_numpy(sample['mask'] > 127)[None, None].repeat(2, 1, 1, 1)
    merged_t = transform(batch_mse, batch_gan, mask)
    assert merged_t.shape == batch_mse.shape
    torch.testing.assert_close(merged_t[1], to_t(sample['pseudo']))
    # soft float weights are used as given
    weight = np.full((64, 64), 0.25, np.float32)
    mixed = transform(sample['mse'].astype(np.float32), sample['gan'].astype(np.float32), weight)
    np.testing.assert_allclose(mixed, 0.25 * sample['mse'] + 0.75 * sample['gan'], rtol=1e-5)


def test_transform_reads_uint8_masks_with_the_mask_rule():
    """A uint8 mask of 0 and 1 (``mask.astype(np.uint8)``) is binary with 1 the artifact, as read_mask has it; other
    uint8 masks are thresholded at 127. An HxWx1 mask on HxW (grey) images gives an HxW pseudo-GT."""
    mse, gan = np.full((8, 8, 3), 200, np.uint8), np.full((8, 8, 3), 10, np.uint8)
    box = np.zeros((8, 8), bool)
    box[2:5, 2:5] = True
    for mask in (box.astype(np.uint8), box.astype(np.uint8) * 255, np.where(box, 200, 100).astype(np.uint8)):
        for transform in (ArtifactMaskTransform(), ArtifactMaskTransform(dilate=0.5)):
            np.testing.assert_array_equal(transform(mse, gan, mask)[:, :, 0] == 200, box)
        merged_t = ArtifactMaskTransform()(torch.from_numpy(mse).permute(2, 0, 1), torch.from_numpy(gan).permute(
            2, 0, 1), torch.from_numpy(mask))
        np.testing.assert_array_equal(merged_t[0].numpy() == 200, box)
    grey = ArtifactMaskTransform()(mse[:, :, 0], gan[:, :, 0], box[:, :, None])
    assert grey.shape == (8, 8)
    np.testing.assert_array_equal(grey == 200, box)


def test_transform_dilate_and_feather_in_pixels():
    mask = np.zeros((41, 41), bool)
    mask[20, 20] = True
    dilated = ArtifactMaskTransform(dilate=3).weight(mask)
    assert dilated[20, 23] == 1 and dilated[20, 24] == 0 and dilated[23, 20] == 1
    disk = ((np.mgrid[0:41, 0:41] - 20)**2).sum(0) <= 9  # a Euclidean disk of radius 3
    np.testing.assert_array_equal(dilated > 0, disk)
    soft = ArtifactMaskTransform(dilate=2, feather=4).weight(mask)
    assert soft[20, 22] == 1  # inside the dilated mask: full replacement
    np.testing.assert_allclose(soft[20, 22:27], [1, 0.75, 0.5, 0.25, 0], atol=1e-3)  # linear fall-off over 4 px
    assert ArtifactMaskTransform(dilate=2, feather=4).weight(np.zeros((9, 9), bool)).max() == 0
    torch_soft = ArtifactMaskTransform(dilate=2, feather=4).weight(torch.from_numpy(mask)[None])
    np.testing.assert_allclose(torch_soft[0].numpy(), soft)


def test_transform_bad_input():
    with pytest.raises(ValueError, match='>= 0'):
        ArtifactMaskTransform(dilate=-1)
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        ArtifactMaskTransform().weight(np.full((4, 4), 2.0, np.float32))
    with pytest.raises(ValueError, match='differs'):
        ArtifactMaskTransform()(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), np.zeros((4, 4), bool))


# -------------------------------------------------------------------------------------------------------- dataset
def test_on_the_fly_dataset_crops_mask_with_the_same_window(split):
    assert 'PseudoGTPairedDataset' in DATASET_REGISTRY
    dataset = build_dataset(dataset_opt(split, return_mask=True, return_mse=True))
    assert len(dataset) == 3
    for index in range(3):
        for _ in range(4):
            item = dataset[index]
            assert item['lq'].shape == (3, 8, 8) and item['gt'].shape == (3, 32, 32)
            assert item['mask'].shape == (1, 32, 32) and item['mse'].shape == (3, 32, 32)
            # gt is mse where the mask is set and differs from it (the painted artifact) nowhere else - so the mask
            # was cropped, flipped and rotated together with the images
            inside = item['mask'][0] > 0.5
            torch.testing.assert_close(item['gt'][:, inside], item['mse'][:, inside])
            assert item['gan_path'] == item['gt_path'] and item['mask_path'].endswith('.png')


def test_precomputed_dataset_equals_on_the_fly(split):
    on_the_fly = build_dataset(dataset_opt(split, phase='val'))
    precomputed = build_dataset(dict(dataset_opt(split, phase='val'), dataroot_gt=split['pseudo'], dataroot_gan=None))
    for index in range(3):
        a, b = on_the_fly[index], precomputed[index]
        torch.testing.assert_close(a['gt'], b['gt'], atol=1 / 255 + 1e-6, rtol=0)
        assert a['gt'].shape == (3, 64, 64) and torch.equal(a['mask'], b['mask'])
    only_gt = build_dataset(
        dict(
            name='p',
            type='PseudoGTPairedDataset',
            dataroot_lq=split['lq'],
            dataroot_gt=split['pseudo'],
            io_backend=dict(type='disk'),
            scale=4,
            phase='val'))
    assert set(only_gt[0]) == {'lq', 'gt', 'lq_path', 'gt_path'}


def test_dataset_meta_info_tmpl_mean_std(split, tmp_path):
    lq = tmp_path / 'lq'
    lq.mkdir()
    for name in os.listdir(split['lq']):
        shutil.copy(osp.join(split['lq'], name), lq / name.replace('.png', 'x4.png'))
    meta = tmp_path / 'meta.txt'
    meta.write_text('chelsea.png (64,64,3)\ncoffee.png (64,64,3)\n')
    dataset = build_dataset(
        dataset_opt(
            split,
            phase='val',
            dataroot_lq=str(lq),
            filename_tmpl='{}x4',
            meta_info_file=str(meta),
            mean=[0.5, 0.5, 0.5],
            std=[0.5, 0.5, 0.5]))
    assert len(dataset) == 2 and dataset[0]['lq_path'].endswith('chelsea' + 'x4.png')
    assert dataset[0]['gt'].min() < 0  # normalised to [-1, 1]


def test_dataset_lmdb_backend(split, tmp_path):
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs
    roots = {}
    for key in ('lq', 'mse', 'gan', 'mask'):
        names = sorted(os.listdir(split[key]))
        roots[key] = str(tmp_path / f'{key}.lmdb')
        make_lmdb_from_imgs(split[key], roots[key], names, [osp.splitext(n)[0] for n in names], map_size=1 << 24)
    opt = dataset_opt(split, return_mask=True, **{f'dataroot_{key}': root for key, root in roots.items()})
    opt['io_backend'] = dict(type='lmdb')
    dataset = build_dataset(opt)
    item = dataset[0]
    assert item['gt'].shape == (3, 32, 32) and item['mask'].shape == (1, 32, 32)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=1)
    assert next(iter(loader))['lq'].shape == (2, 3, 8, 8)


def paint_red(mask_path):
    """Rewrite a grey mask as a red one (the other channels 0)."""
    mask = cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE)
    red = np.zeros(mask.shape + (3, ), np.uint8)
    red[:, :, 2] = mask  # OpenCV writes BGR
    cv2.imwrite(mask_path, red)


# Cases where the dataset cannot be used at all (DesraSettingsError, exit 2 in train.py); the others are files that
# failed (DesraInputError only, exit 1).
SETTINGS_CASES = ('missing_mask', 'missing_partner', 'empty', 'both_modes', 'incomplete', 'mask_channel', 'no_gt_size',
                  'gt_size_scale', 'bad_transform', 'meta_subfolder', 'meta_unindexed')


@pytest.mark.parametrize('case', [
    'lq_scale', 'mask_size', 'missing_mask', 'missing_partner', 'empty', 'small', 'both_modes', 'incomplete',
    'red_mask', 'mask_channel', 'no_gt_size', 'gt_size_scale', 'bad_transform', 'meta_subfolder', 'meta_unindexed'
])
def test_dataset_bad_input(split, tmp_path, case):
    data = copy_split(split, str(tmp_path / 'd'))
    opt = dataset_opt(data)
    expect = 'chelsea'
    if case == 'lq_scale':
        cv2.imwrite(osp.join(data['lq'], 'chelsea.png'), np.zeros((15, 16, 3), np.uint8))
        expect = r'does not match LR .*chelsea\.png'
    elif case == 'mask_size':
        cv2.imwrite(osp.join(data['mask'], 'chelsea.png'), np.zeros((60, 64), np.uint8))
        expect = r'mask[/\\]chelsea\.png: size 64x60'
    elif case == 'missing_mask':
        os.remove(osp.join(data['mask'], 'chelsea.png'))
        expect = r'gan[/\\]chelsea\.png: no partner named chelsea\.\* in .*dataroot_mask'
    elif case == 'missing_partner':
        os.remove(osp.join(data['lq'], 'chelsea.png'))
        expect = 'dataroot_lq'
    elif case == 'empty':
        for folder in data.values():
            shutil.rmtree(folder)
            os.makedirs(folder)
        expect = 'empty dataset'
    elif case == 'small':
        opt['gt_size'] = 128
        expect = 'smaller than gt_size 128'
    elif case == 'both_modes':
        opt['dataroot_gt'] = data['pseudo']
        expect = 'not both'
    elif case == 'incomplete':
        opt.pop('dataroot_mask')
        expect = 'needs dataroot_mask'
    elif case == 'red_mask':
        paint_red(osp.join(data['mask'], 'chelsea.png'))
        expect = r'chelsea\.png: colour mask .*name the channel that holds the mask \(datasets\.train\.mask_channel\)'
    elif case == 'mask_channel':
        opt['mask_channel'] = 4
        expect = r'datasets\.train\.mask_channel: 4 is not a channel'
    elif case == 'no_gt_size':
        opt.pop('gt_size')
        expect = r'datasets\.train\.gt_size: required for training'
    elif case == 'gt_size_scale':
        opt['gt_size'] = 30
        expect = r'datasets\.train\.gt_size: 30 is not a positive multiple of scale 4'
    elif case == 'bad_transform':
        opt['transform'] = dict(type='ArtifactMaskTransform', dilate=-2)
        expect = r'datasets\.train\.transform: .*must be >= 0'
    elif case in ('meta_subfolder', 'meta_unindexed'):
        # BasicSR / Real-ESRGAN meta files may list sub-folder paths; this dataset pairs flat folders by stem
        listed = 'chelsea' if case == 'meta_subfolder' else 'extra'  # shadows a top-level image / has no partners
        os.makedirs(osp.join(data['gan'], 'sub'))
        shutil.copy(osp.join(data['gan'], 'coffee.png'), osp.join(data['gan'], 'sub', f'{listed}.png'))
        meta = tmp_path / 'meta.txt'
        meta.write_text(f'astronaut.png (64,64,3)\n\nsub/{listed}.png (64,64,3)\n')
        opt['meta_info_file'] = str(meta)
        expect = rf'meta\.txt: line 3: sub/{listed}\.png is not an image directly in .*datasets\.train\.dataroot_gan'
    with pytest.raises(DesraInputError, match=expect) as caught:
        build_dataset(opt)
    assert isinstance(caught.value, DesraSettingsError) == (case in SETTINGS_CASES)


def test_dataset_mask_channel_reads_colour_masks(split, tmp_path):
    data = copy_split(split, str(tmp_path / 'd'))
    for name in os.listdir(data['mask']):
        paint_red(osp.join(data['mask'], name))
    red = build_dataset(dataset_opt(data, phase='val', mask_channel=0))
    grey = build_dataset(dataset_opt(split, phase='val'))
    for i in range(len(grey)):
        torch.testing.assert_close(red[i]['mask'], grey[i]['mask'])
        torch.testing.assert_close(red[i]['gt'], grey[i]['gt'])


def test_pseudo_gt_merge_imports_no_basicsr():
    """The eq. 10 merge and the modules built on it (pseudo-gt job, reports) work without BasicSR."""
    code = ('import sys\n'
            'import desra_basicsr.detection.pseudo_gt, desra_basicsr.jobs.pseudo_gt, desra_basicsr.jobs.report\n'
            'import desra_basicsr.evaluation.report\n'
            'print(sorted(m for m in sys.modules if m.split(".")[0] in ("basicsr", "mmseg")))\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=train_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '[]'
    assert ArtifactMaskTransform is pseudo_gt.ArtifactMaskTransform  # the registered transform is the pure merge


def test_dataset_warns_once_for_non_binary_masks(split, tmp_path):
    data = copy_split(split, str(tmp_path / 'd'))
    for name in os.listdir(data['mask']):
        mask = cv2.imread(osp.join(data['mask'], name), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(osp.join(data['mask'], name), np.where(mask > 0, 200, 40).astype(np.uint8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        dataset = build_dataset(dataset_opt(data, phase='val'))
    messages = [str(w.message) for w in caught if 'not binary' in str(w.message)]
    assert len(messages) == 1 and '3 of 3' in messages[0]
    assert set(torch.unique(dataset[0]['mask']).tolist()) == {0.0, 1.0}  # thresholded at 127


# ---------------------------------------------------------------------------------------------- pseudo-gt command
def run_cli(capsys, *args):
    """Run ``desra <args>`` in this process; returns (exit code, stdout + stderr, stderr)."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err, captured.err


def test_pseudo_gt_command_writes_resumes_and_reports(split, tmp_path, capsys):
    out = tmp_path / 'out'
    code, output, _ = run_cli(capsys, 'pseudo-gt', '--mse', split['mse'], '--gan', split['gan'], '--masks',
                              split['mask'], '--out', str(out))
    assert code == 0, output
    for name in ('astronaut', 'chelsea', 'coffee'):
        written = cv2.imread(str(out / f'{name}.png'))
        np.testing.assert_array_equal(written, cv2.imread(osp.join(split['pseudo'], f'{name}.png')))
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['counts'] == {'done': 3, 'error': 0}
    bt, bl, bh, bw = artifact_box(64)
    assert summary['items']['coffee']['artifact_fraction'] == pytest.approx(bh * bw / 64**2, abs=1e-6)
    code, output, _ = run_cli(capsys, 'pseudo-gt', '--mse', split['mse'], '--gan', split['gan'], '--masks',
                              split['mask'], '--out', str(out))
    assert code == 0 and '0 done, 3 kept from an earlier run' in output
    assert json.loads((out / 'summary.json').read_text()) == summary
    assert not [f for f in os.listdir(out) if f.startswith('.')]  # no temporary files left


def test_pseudo_gt_command_bad_input(split, tmp_path, capsys):
    data = copy_split(split, str(tmp_path / 'd'))
    os.remove(osp.join(data['mask'], 'chelsea.png'))
    cv2.imwrite(osp.join(data['mask'], 'coffee.png'), np.zeros((10, 10), np.uint8))
    out = tmp_path / 'out'
    code, output, _ = run_cli(capsys, 'pseudo-gt', '--mse', data['mse'], '--gan', data['gan'], '--masks', data['mask'],
                              '--out', str(out))
    assert code == 1
    assert 'chelsea: no partner file' in output and 'mask size 10x10' in output
    assert sorted(os.listdir(out)) == ['astronaut.png', 'summary.json']
    code, _, err = run_cli(capsys, 'pseudo-gt', '--mse', data['mse'], '--gan', str(tmp_path / 'nope'), '--masks',
                           data['mask'], '--out', str(out))
    assert code == 2 and err.startswith('error: ') and '--gan is not a folder' in err


# ---------------------------------------------------------------------------------------------------------- metric
def test_artifact_ratio_metric():
    metric = METRIC_REGISTRY.get('desra_artifact_ratio')
    sample = make_sample('astronaut', 96)
    assert metric(img=sample['mse'], img2=sample['mse']) == 0.0
    bt, bl, bh, bw = artifact_box(96)
    ratio = metric(img=sample['gan'], img2=sample['mse'], min_area=100)
    assert 0.5 * bh * bw / 96**2 < ratio < 2.0 * bh * bw / 96**2
    # img_mse (the MSE-SR reference) wins over img2 (e.g. pseudo-GT)
    assert metric(img=sample['gan'], img2=sample['gan'], img_mse=sample['mse'], min_area=100) == ratio
    assert metric(img=sample['pseudo'], img2=sample['gan'], img_mse=sample['mse'], min_area=100) < ratio / 4
    with pytest.raises(ValueError, match='reference'):
        metric(img=sample['gan'], img2=None)
