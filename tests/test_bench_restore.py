"""``benchmarks/bench_restore.py`` end to end on tiny data: a zoo of two generators, untrained restorers."""
import argparse
import json
import os

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata

from benchmarks import bench_restore as bench
from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.jobs import restore
from desra_basicsr.restore.checkpoint import save_checkpoint
from desra_basicsr.restore.model import Restorer, RestorerConfig

PHOTOS = ('astronaut', 'chelsea', 'coffee')
SIZE = 208  # NIQE fits a Gaussian to 96-pixel blocks: 2 x 2 of them after the 4-pixel border


def _folder(root, name, images):
    os.makedirs(root / name, exist_ok=True)
    for photo, img in images.items():
        cv2.imwrite(str(root / name / f'{photo}.png'), img)
    return str(root / name)


def _zoo(root):
    """HR photos, their LR images and blurred MSE-SR stand-ins, and two generators painting noise into a square of
    each photo (the second one also with a red cast)."""
    rng = np.random.default_rng(0)
    hr = {p: cv2.resize(getattr(skdata, p)()[..., ::-1], (SIZE, SIZE), interpolation=cv2.INTER_AREA) for p in PHOTOS}
    lr = _folder(root, 'lr', {p: cv2.resize(i, (SIZE // 4, SIZE // 4), interpolation=cv2.INTER_AREA)
                              for p, i in hr.items()})
    blurred = {p: cv2.GaussianBlur(i, (0, 0), 4) for p, i in hr.items()}
    manifest = {'hr': _folder(root, 'hr', hr), 'generators': [],
                'mse_reference': {s: _folder(root, f'mse_{s}', blurred) for s in ('finetune', 'heldout')}}
    for g, top in (('gen_seen', 20), ('gen_unseen', 60)):
        splits = {}
        for split in ('finetune', 'heldout'):
            outs, masks = {}, {}
            for p, img in hr.items():
                out, mask = img.copy(), np.zeros((SIZE, SIZE), np.uint8)
                out[top:top + 40, 30:70] = rng.integers(0, 256, (40, 40, 3))
                if g == 'gen_unseen':
                    out[:, :, 2] = np.clip(out[:, :, 2].astype(int) + 30, 0, 255)
                mask[top:top + 40, 30:70] = 255
                outs[p], masks[p] = out, mask
            splits[split] = {'sr': _folder(root, f'{g}_{split}_sr', outs), 'lr': lr,
                             'masks': _folder(root, f'{g}_{split}_masks', masks)}
        manifest['generators'].append({'name': g, 'class': g, 'splits': splits})
    path = root / 'manifest.json'
    path.write_text(json.dumps(manifest))
    return str(path)


def _restorer(path, objective):
    torch.manual_seed(0)
    config = RestorerConfig(classes=('gen_seen', 'grid'), crop_size=32, block_out_channels=(8, 16), train_timesteps=20,
                            objective=objective, prediction='sample', residual=objective == 'diffusion')
    save_checkpoint(str(path), config, Restorer(config).unet.state_dict())
    return str(path)


def test_the_restore_benchmark_scores_every_method_on_every_set(tmp_path):
    work = tmp_path / 'work'
    argv = ['--work', str(work), '--zoo', _zoo(tmp_path), '--seen', 'gen_seen', '--unseen', 'gen_unseen',
            '--restorer', _restorer(tmp_path / 'diffusion.pth', 'diffusion'),
            '--regression', _restorer(tmp_path / 'regression.pth', 'regression'), '--seeds', '0', '1', '--steps', '2',
            '--step-sweep', '3', '--guidance', '1', '2', '--synthetic-per-class', '1', '--whole', '--outside', '0.5',
            '--passes', '2']
    report = bench.main(argv)
    seen, unseen, synthetic = (report['figures'][s] for s in ('seen', 'unseen', 'synthetic'))
    restored_whole = {f'diffusion_blind_{mode}_seed{seed}' for mode in ('whole', 'outside0.5', 'outside0.5_passes2')
                      for seed in (0, 1)}
    assert set(seen) == {'input', 'mse', 'fusion', 'fusion_colour', 'candidate_gen_unseen',
                         'candidate_gen_unseen_colour', 'candidate_gen_seen_colour', 'diffusion_blind_seed0',
                         'diffusion_blind_seed1', 'diffusion_class_g1', 'diffusion_class_g2', 'diffusion_blind_3steps',
                         'regression_blind', 'regression_class'} | restored_whole
    # The colour fix from the LR images takes the red cast off the second generator.
    assert seen['candidate_gen_unseen_colour']['psnr'] > seen['candidate_gen_unseen']['psnr'] + 3
    assert set(unseen) == {'input', 'mse', 'diffusion_blind_seed0', 'diffusion_blind_seed1', 'regression_blind'} | \
        restored_whole
    assert {'input', 'diffusion_blind_seed0', 'regression_blind'} | restored_whole <= set(synthetic)
    assert report['images'] == {'seen': 3, 'unseen': 3, 'synthetic': 6}  # one image of each of the six classes
    assert seen['input']['area_down'] == 0 and seen['input']['detail_outside'] == 1
    assert seen['input']['area'] > 0 and seen['mse']['area'] == 0
    for row in seen.values():
        assert all(np.isfinite(row[k]) for k in ('psnr', 'ssim', 'psnr_in_mask', 'niqe', 'area'))
    # Restoring inside the masks leaves every other pixel as it was.
    restored = cv2.imread(str(work / 'restored' / 'seen' / 'diffusion_blind_seed0' / 'astronaut.png'))
    original = cv2.imread(os.path.join(tmp_path, 'gen_seen_heldout_sr', 'astronaut.png'))
    mask = cv2.imread(os.path.join(tmp_path, 'gen_seen_heldout_masks', 'astronaut.png'), 0) > 0
    assert (restored[~mask] == original[~mask]).all() and (restored[mask] != original[mask]).any()
    whole = cv2.imread(str(work / 'restored' / 'seen' / 'diffusion_blind_whole_seed0' / 'astronaut.png'))
    assert (whole[~mask] != original[~mask]).any()  # without masks, the outside is restored too
    assert abs(seen['diffusion_blind_seed0']['detail_outside'] - 1) < 0.01  # the 11x11 window reaches inside
    # The composed --outside (--passes) rows are what desra restore --masks --outside (--passes) writes.
    for passes, label in ((1, 'outside0.5'), (2, 'outside0.5_passes2')):
        direct = tmp_path / f'direct_{label}'
        restore.run(restore.RestoreSettings(input=os.path.join(tmp_path, 'gen_seen_heldout_sr'), out=str(direct),
                                            masks=os.path.join(tmp_path, 'gen_seen_heldout_masks'), outside=0.5,
                                            passes=passes, checkpoint=str(tmp_path / 'diffusion.pth'), steps=2,
                                            device='cpu', progress=False))
        composed = cv2.imread(str(work / 'restored' / 'seen' / f'diffusion_blind_{label}_seed0' / 'astronaut.png'))
        assert (composed == cv2.imread(str(direct / 'astronaut.png'))).all()
        assert (composed[~mask] != original[~mask]).any() and (composed[~mask] != whole[~mask]).any()
    with pytest.raises(SystemExit):
        bench.parse_args(['--work', str(work), '--outside', '0.5'])  # composed from --whole
    with pytest.raises(SystemExit):
        bench.parse_args(['--work', str(work), '--whole', '--outside', '1.5'])
    with pytest.raises(SystemExit):
        bench.parse_args(['--work', str(work), '--whole', '--passes', '2'])  # starts from --outside
    with pytest.raises(SystemExit):
        bench.parse_args(['--work', str(work), '--whole', '--outside', '0.5', '--passes', '1'])
    assert set(report['targets']) == {'seen', 'unseen'}
    assert set(report['targets']['seen']) == {'seed0', 'seed1', 'whole_seed0', 'whole_seed1', 'outside0.5_seed0',
                                              'outside0.5_seed1', 'outside0.5_passes2_seed0',
                                              'outside0.5_passes2_seed1'}
    assert json.loads((work / 'results.json').read_text())['figures'] == report['figures']
    # Run again, it resumes every job: the composed --outside files the --passes jobs read are written again with the
    # same bytes, which the job core does not count as a change.
    assert bench.main(argv)['figures'].keys() == report['figures'].keys()


def test_targets_are_checked_per_seed_and_mode():
    row = lambda down, gain, detail: {'area_down': down, 'psnr_gain': gain, 'detail_outside': detail}  # noqa: E731
    results = {'seen': {'input': row(0, 0, 1), 'diffusion_blind_seed0': row(100, 0.1, 1.0),
                        'diffusion_blind_whole_seed0': row(99, 0.9, 0.84),
                        'diffusion_blind_outside0.5_seed0': row(99, 0.6, 0.90),
                        'diffusion_blind_10steps': row(100, 0.5, 1.0), 'regression_blind': row(100, 1.0, 1.0)},
               'unseen': {'diffusion_blind_seed0': row(40, 0.03, 1.0), 'diffusion_blind_whole_seed0': row(None, 0, 1)}}
    assert bench.target_checks(results, [0]) == {
        'seen': {'seed0': False, 'whole_seed0': False, 'outside0.5_seed0': True},  # gain 0.1; detail 0.84; all met
        'unseen': {'seed0': False, 'whole_seed0': False}}  # area down 40 < 50; no area to remove


def test_the_localiser_driven_fusion_fuses_the_zoo_without_mse_sr(tmp_path):
    from desra_basicsr.jobs import localizer_train
    from desra_basicsr.jobs.localizer_sources import TrainingSource
    zoo = _zoo(tmp_path)
    generators = json.loads(open(zoo).read())['generators']
    out = str(tmp_path / 'localizer')
    sources = tuple(TrainingSource('generator', g['splits']['finetune']['sr'], g['splits']['finetune']['masks'])
                    for g in generators)
    localizer_train.run(localizer_train.LocalizerTrainSettings(out=out, sources=sources, iters=1, batch_size=2,
                                                               crop_size=48, num_workers=0, progress=False))
    args = bench.parse_args(['--work', str(tmp_path / 'work'), '--zoo', zoo, '--seen', 'gen_seen', '--unseen',
                             'gen_unseen', '--sets', 'seen', '--localizer-config', f'{out}/localizer_config.py',
                             '--localizer-checkpoint', f'{out}/localizer.pth'])
    seen = bench.zoo_sets(args, str(tmp_path / 'work'))[0]
    assert {'fusion', 'fusion_localizer', 'fusion_localizer_colour', 'candidate_gen_unseen'} <= set(seen.methods)
    summary = json.loads(open(os.path.join(seen.methods['fusion_localizer'], 'summary.json')).read())
    assert len(summary['meta']['sources']) == 2  # the two generators, no MSE-SR fallback
    colour = json.loads(open(os.path.join(seen.methods['fusion_localizer_colour'], 'summary.json')).read())
    assert colour['meta']['lr'] == os.path.join(tmp_path, 'lr') and 'lr' not in summary['meta']
    for photo in PHOTOS:
        shares = summary['items'][photo]['shares']
        assert len(shares) == 2 and abs(sum(shares) - 1) < 1e-6
        fused = cv2.imread(os.path.join(seen.methods['fusion_localizer'], f'{photo}.png'))
        assert fused.shape == (SIZE, SIZE, 3)


def test_the_synthetic_set_of_one_split_never_holds_another_splits_photos(tmp_path):
    zoo = json.loads(open(_zoo(tmp_path)).read())
    work = str(tmp_path / 'work')
    args = lambda split, per_class: argparse.Namespace(split=split, synthetic_per_class=per_class)  # noqa: E731
    held = bench.synthetic_set(args('heldout', 1), work, zoo['hr'], ['astronaut'])
    tuned = bench.synthetic_set(args('finetune', 1), work, zoo['hr'], ['coffee'])
    assert held.images != tuned.images and held.images.startswith(os.path.join(work, 'synthetic', 'heldout'))
    for image_set, photo in ((held, 'astronaut'), (tuned, 'coffee')):
        for folder in (image_set.images, image_set.masks, image_set.hr):
            names = os.listdir(folder)
            assert len(names) == 6 and all(n.startswith(f'{photo}__') for n in names), names
    again = bench.synthetic_set(args('finetune', 1), work, zoo['hr'], ['chelsea'])  # other photos, same split
    for folder in (again.images, again.masks, again.hr, os.path.join(work, 'synthetic', 'finetune', 'hr_split')):
        names = os.listdir(folder)
        assert names and all(n.startswith('chelsea') for n in names), names


def test_a_finetune_dir_of_another_split_is_refused_before_any_work(tmp_path):
    zoo = _zoo(tmp_path)
    work = tmp_path / 'work'
    other = tmp_path / 'other_split_sr'
    other.mkdir()
    cv2.imwrite(str(other / 'rocket.png'), np.zeros((8, 8, 3), np.uint8))
    argv = ['--work', str(work), '--zoo', zoo, '--seen', 'gen_seen', '--unseen', 'gen_unseen', '--restorer',
            _restorer(tmp_path / 'diffusion.pth', 'diffusion'), '--regression', '', '--finetune-dir', str(other)]
    with pytest.raises(DesraSettingsError, match=r'other_split_sr: the DeSRA fine-tune\'s outputs must be the heldout '
                                                 r'split\'s 3 images \(missing astronaut, chelsea, coffee; not of the '
                                                 r'split rocket\)'):
        bench.main(argv)
    assert not work.exists()
    with pytest.raises(DesraSettingsError, match='--finetune-dir .*absent: no such folder'):
        bench.main(argv[:-1] + [str(tmp_path / 'absent')])
    # --demo gives the fine-tune's outputs of the split the run scores
    for split, folder in (('heldout', 'heldout'), ('finetune', 'pool_after')):
        args = bench.parse_args(['--work', str(work), '--split', split, '--demo', 'results/demo'])
        assert args.finetune_dir == os.path.join('results/demo', 'rounds', '001', folder, 'sr')
    assert bench.parse_args(['--work', str(work), '--demo', 'd', '--finetune-dir', 'mine']).finetune_dir == 'mine'
