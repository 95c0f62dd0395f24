"""The cross-domain deraining test: the models of ``options/derain/`` check, load and train in BasicSR on rain pairs,
and ``benchmarks/bench_derain.py`` runs end to end on a tiny corpus (rain, deraining, DeSRA-det, localiser, fusion)."""
import csv
import glob
import json
import os
import os.path as osp

import cv2
import pytest
import torch
import yaml
from helpers.localizer import make_artifact_data
from helpers.paths import REPO_ROOT
from helpers.photos import skimage_photo_bgr
from helpers.training import experiment_dir, read_logs, run_train

from benchmarks import bench_derain
from desra_basicsr.commands import main
from desra_basicsr.demo_corpus import FIELDS

DERAIN_OPTIONS = sorted(glob.glob(osp.join(REPO_ROOT, 'options', 'derain', '*.yml')))
PRETRAINED = osp.join(REPO_ROOT, 'experiments', 'pretrained_models')


def model_name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def load(path: str) -> dict:
    with open(path, 'r') as f:
        return yaml.safe_load(f)


def test_derain_models_are_one_pixel_model_and_at_least_two_gan_models_on_the_rain_pairs():
    names = [model_name(p) for p in DERAIN_OPTIONS]
    assert bench_derain.PIXEL in names and set(bench_derain.GAN_MODELS) <= set(names)
    recipes = set()
    for path in DERAIN_OPTIONS:
        opt = load(path)
        data = opt['datasets']['train']
        assert (data['dataroot_gt'], data['dataroot_lq']) == ('datasets/demo/train/gt', 'datasets/demo/rain/train/img')
        assert opt['scale'] == 1 and opt['network_g']['upscale'] == 1 and opt['name'] == f'derain_{model_name(path)}'
        if model_name(path) == bench_derain.PIXEL:
            assert opt['model_type'] == 'SRModel' and 'gan_opt' not in opt['train']
        else:  # BasicSR's own GAN model and losses, started from the pixel model
            assert opt['model_type'] == 'SRGANModel' and opt['train']['gan_opt']['type'] == 'GANLoss'
            assert opt['path']['pretrain_network_g'] == 'experiments/pretrained_models/derain_pixel.pth'
            recipes.add(yaml.safe_dump({k: opt[k] for k in ('network_d', 'train', 'manual_seed')}))
    assert len(recipes) == len(DERAIN_OPTIONS) - 1


@pytest.mark.parametrize('path', DERAIN_OPTIONS, ids=model_name)
def test_derain_options_check_and_committed_weights_load(path):
    from desra_basicsr.inference import build_generator
    from desra_basicsr.train import check_types, unknown_keys
    opt = load(path)
    check_types(opt, path)
    assert unknown_keys(opt) == ([], [])
    kwargs = {k: v for k, v in opt['network_g'].items() if k != 'type'}
    net = build_generator(opt['network_g']['type'], kwargs, osp.join(PRETRAINED, f'derain_{model_name(path)}.pth'),
                          'params')
    with torch.no_grad():
        assert net(torch.rand(1, 3, 20, 28)).shape == (1, 3, 20, 28)


@pytest.fixture(scope='module')
def rain_pairs(tmp_path_factory) -> dict:
    """96-pixel crops of real photos (GT) and the same crops with rain from ``desra zoo rain`` (LQ)."""
    root = str(tmp_path_factory.mktemp('rain_pairs'))
    gt = osp.join(root, 'gt')
    os.makedirs(gt)
    for name in ('astronaut', 'chelsea', 'coffee'):
        cv2.imwrite(osp.join(gt, f'{name}.png'), skimage_photo_bgr(name)[:128, :128])
    assert main(['zoo', 'rain', '--hr', gt, '--out', osp.join(root, 'rain')]) == 0
    return {'gt': gt, 'lq': osp.join(root, 'rain', 'img')}


@pytest.mark.parametrize('name', ['pixel', 'gan_unetd'])
def test_derain_model_trains_two_iterations_on_rain_pairs(name, rain_pairs, tmp_path):
    opt = load(osp.join(REPO_ROOT, 'options', 'derain', f'{name}.yml'))
    opt['datasets']['train'].update(dataroot_gt=rain_pairs['gt'], dataroot_lq=rain_pairs['lq'], num_worker_per_gpu=0,
                                    batch_size_per_gpu=1, dataset_enlarge_ratio=1, gt_size=64)
    if opt['path'].get('pretrain_network_g'):
        opt['path']['pretrain_network_g'] = osp.join(REPO_ROOT, opt['path']['pretrain_network_g'])
    opt['train']['total_iter'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    cwd = str(tmp_path)
    run_train(opt, cwd)
    log = read_logs(cwd, opt)
    if name == 'pixel':
        assert 'l_pix' in log, log[-3000:]
    else:
        assert all(k in log for k in ('l_g_pix', 'l_g_gan', 'l_d_real', 'derain_pixel.pth')), log[-3000:]
    assert osp.isfile(osp.join(experiment_dir(cwd, opt), 'models', 'net_g_2.pth'))


def tiny_corpus(root: str) -> dict:
    """Two fine-tune and two held-out photos (96-pixel crops) and their manifest."""
    hr = osp.join(root, 'hr')
    os.makedirs(hr)
    manifest = osp.join(root, 'manifest.csv')
    with open(manifest, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        for name, split in (('astronaut', 'finetune'), ('coffee', 'finetune'), ('chelsea', 'heldout'),
                            ('rocket', 'heldout')):
            writer.writerow([name, split, 'scikit-image', f'{name}.png', 'test', 'test'])
            cv2.imwrite(osp.join(hr, f'{name}.png'), skimage_photo_bgr(name)[:96, :96])
    return {'hr': hr, 'manifest': manifest}


def check_results(results: dict, gans, fused) -> None:
    for split in bench_derain.SPLITS:
        quality = results['quality'][split]
        assert list(quality) == ['rain', bench_derain.PIXEL, *gans, *fused]
        assert all(0 < q['psnr'] < 100 and 0 < q['ssim'] <= 1 for q in quality.values())
        assert quality['rain']['psnr'] < 40  # the rain really is there
        assert set(results['artifact_area'][split]) == set(gans) | set(fused)
        assert all(0 <= a <= 100 for a in results['artifact_area'][split].values())
    assert sorted(results['fusion_order']) == sorted(gans)
    held = results['quality']['heldout']
    for label in fused:
        beats = all(held[label]['psnr'] >= held[m]['psnr'] and held[label]['ssim'] >= held[m]['ssim'] for m in gans)
        assert results['fused_beats_every_gan'][label] == beats


def test_bench_derain_end_to_end_on_a_tiny_corpus_and_resumes(tmp_path, capsys):
    corpus = tiny_corpus(str(tmp_path))
    work = str(tmp_path / 'work')
    argv = ['--work', work, '--hr', corpus['hr'], '--manifest', corpus['manifest'], '--gan-models', 'gan_vgg',
            'gan_unetd']
    results = bench_derain.main(argv)
    check_results(results, ['gan_vgg', 'gan_unetd'], ['fused_desra'])
    assert results['images'] == {'finetune': 2, 'heldout': 2} and results['localizer'] is None
    assert sorted(os.listdir(osp.join(work, 'rain', 'heldout', 'img'))) == ['chelsea.png', 'rocket.png']
    assert not osp.exists(osp.join(work, 'out', 'heldout', 'gan_unetd_lsgan'))
    out = capsys.readouterr().out
    assert 'fused_desra' in out and 'every GAN model on the held-out split' in out
    with open(osp.join(work, 'results.json')) as f:
        assert json.load(f)['quality'] == results['quality']
    stamp = os.stat(osp.join(work, 'out', 'heldout', 'pixel', 'chelsea.png')).st_mtime_ns
    assert bench_derain.main(argv)['quality'] == results['quality']  # resumed: the same figures, nothing redone
    assert os.stat(osp.join(work, 'out', 'heldout', 'pixel', 'chelsea.png')).st_mtime_ns == stamp


def test_bench_derain_with_a_localiser_scores_it_and_fuses_with_it(tmp_path):
    data = make_artifact_data(str(tmp_path / 'loc_data'))
    loc = str(tmp_path / 'loc')
    assert main(['localizer', 'train', '--gan', data['img'], '--masks', data['mask'], '--out', loc, '--arch',
                 'segformer-mit-b0', '--iters', '1', '--batch-size', '2', '--crop-size', '48', '--num-workers',
                 '0']) == 0
    corpus = tiny_corpus(str(tmp_path))
    results = bench_derain.main([
        '--work', str(tmp_path / 'work'), '--hr', corpus['hr'], '--manifest', corpus['manifest'], '--localizer',
        osp.join(loc, 'localizer_config.py'), osp.join(loc, 'localizer.pth')])
    gans = list(bench_derain.GAN_MODELS)
    check_results(results, gans, ['fused_desra', 'fused_localizer'])
    scores = results['localizer']['scores']
    assert list(scores) == gans
    assert all(0 <= s['iou'] <= 100 and 0 <= s['precision'] <= 1 and 0 <= s['recall'] <= 1 for s in scores.values())


def test_bench_derain_refuses_missing_weights_and_too_few_models(tmp_path, capsys):
    corpus = tiny_corpus(str(tmp_path))
    base = ['--work', str(tmp_path / 'work'), '--hr', corpus['hr'], '--manifest', corpus['manifest']]
    with pytest.raises(SystemExit) as err:
        bench_derain.main(base + ['--weights-dir', str(tmp_path)])
    assert err.value.code == 2
    assert f'{tmp_path}/derain_pixel.pth: not found (make derain' in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        bench_derain.main(base + ['--gan-models', 'gan_vgg'])
    assert err.value.code == 2 and '--gan-models: give at least 2' in capsys.readouterr().err
    assert not (tmp_path / 'work').exists()
