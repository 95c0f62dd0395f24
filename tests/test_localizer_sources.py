"""``desra localizer train`` on several sources: synthetic artifacts, generators and clean images, each weighted."""
import itertools
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desra_basicsr.commands import main
from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.jobs.localizer_sources import TrainingSource, load_source, parse_source, training_artifact_weight
from desra_basicsr.localizer.config import Augmentation, DataSource, build_train_config
from helpers.localizer import make_artifact_data, make_synthetic_folder, mmengine_log, refused
from helpers.photos import skimage_photo_bgr

#: A tiny DeepLabV3+ training on the CPU.
SMALL = ['--arch', 'deeplabv3plus-r18', '--iters', '1', '--batch-size', '2', '--crop-size', '48', '--num-workers', '0']


@pytest.fixture(scope='module')
def zoo(tmp_path_factory):
    """A synthetic-artifact folder (3 finished items, 1 failed, an unfinished image left in img/), a generator's
    outputs with masks, and clean photos."""
    root = tmp_path_factory.mktemp('zoo')
    synth = make_synthetic_folder(str(root / 'synth'))
    cv2.imwrite(str(root / 'synth' / 'img' / 'unfinished.png'), np.zeros((64, 64, 3), np.uint8))
    gen = make_artifact_data(str(root / 'gen'), names=('rocket', 'chelsea'))
    clean = root / 'clean'
    clean.mkdir()
    for name in ('coffee', 'rocket'):
        cv2.imwrite(str(clean / f'{name}.png'), np.ascontiguousarray(skimage_photo_bgr(name)[:64, :64]))
    return dict(synth=synth, img=gen['img'], mask=gen['mask'], clean=str(clean))


def source_args(zoo, synth_weight='2', clean_weight='0.5'):
    return ['--source', 'synthetic', zoo['synth'], f'weight={synth_weight}', '--source', 'generator', zoo['img'],
            zoo['mask'], '--source', 'clean', zoo['clean'], f'weight={clean_weight}']


def test_sources_are_drawn_in_proportion_to_their_weights(zoo, tmp_path):
    """The config's ConcatDataset and sampler, built as mmengine's runner builds them: no training needed."""
    from mmengine.registry import DATA_SAMPLERS, DATASETS
    from mmseg.utils import register_all_modules

    from desra_basicsr.localizer import dataset  # noqa: F401 (registers the dataset)
    from desra_basicsr.localizer import sampler  # noqa: F401 (registers the sampler)
    register_all_modules(init_default_scope=True)
    data = [load_source(parse_source(tokens)) for tokens in (['synthetic', zoo['synth'], 'weight=2'],
                                                             ['generator', zoo['img'], zoo['mask']],
                                                             ['clean', zoo['clean'], 'weight=0.5'])]
    assert data[0].names == ('astronaut', 'chelsea', 'coffee')  # finished items only: no failed or unfinished one
    sources = [DataSource(part.img_dir, part.mask_dir, part.source.weight, part.names) for part in data]
    cfg = build_train_config('segformer-mit-b0', sources, str(tmp_path / 'work'), iters=10, artifact_weight=1.0)
    concat = DATASETS.build(cfg.train_dataloader.dataset)
    assert [len(part) for part in concat.datasets] == [3, 2, 2]

    def draws(seed, n=35000):
        sampler_ = DATA_SAMPLERS.build(cfg.train_dataloader.sampler, default_args=dict(dataset=concat, seed=seed))
        return np.array(list(itertools.islice(iter(sampler_), n)))

    indices = draws(0)
    source = np.searchsorted(concat.cumulative_sizes, indices, side='right')
    shares = np.bincount(source, minlength=3) / len(indices)
    np.testing.assert_allclose(shares, [2 / 3.5, 1 / 3.5, 0.5 / 3.5], atol=0.01)  # whatever each source's size
    counts = np.bincount(indices, minlength=7)
    np.testing.assert_allclose(counts[:3] / counts[:3].sum(), 1 / 3, atol=0.02)  # uniform within a source
    np.testing.assert_array_equal(draws(0, 100), indices[:100])  # seeded by the runner's seed
    assert not np.array_equal(draws(1, 100), indices[:100])
    infos = [concat.get_data_info(i) for i in range(len(concat))]
    assert [osp.basename(info['img_path']) for info in infos[:3]] == ['astronaut.png', 'chelsea.png', 'coffee.png']
    assert infos[5]['seg_map_path'] is None and infos[6]['seg_map_path'] is None  # the clean images


def test_artifact_weight_counts_each_source_by_its_weight(zoo):
    """The share of artifact pixels training draws: 1024 of 4096 in every masked image, none in the clean ones."""
    data = [load_source(TrainingSource('synthetic', zoo['synth'], weight=2.0)),
            load_source(TrainingSource('clean', zoo['clean'], weight=2.0))]
    assert training_artifact_weight(data) == round(np.sqrt(7), 3)  # fraction 1/8
    data[1] = load_source(TrainingSource('clean', zoo['clean'], weight=6.0))
    assert training_artifact_weight(data) == round(np.sqrt(15), 3)  # fraction 1/16


def test_augmentations_are_mmseg_transforms(tmp_path):
    cfg = build_train_config('segformer-mit-b0', [DataSource('img', 'mask')], str(tmp_path), iters=10,
                             artifact_weight=1.0, augmentation=Augmentation((0.5, 1.0, 2.0), 0.75, True))
    pipeline = cfg.train_dataloader.dataset.datasets[0].pipeline
    assert [t['type'] for t in pipeline] == ['LoadImageFromFile', 'LoadArtifactMask', 'RandomChoice', 'RandomCrop',
                                             'RandomFlip', 'PhotoMetricDistortion', 'PackSegInputs']
    assert [c[0]['scale_factor'] for c in pipeline[2]['transforms']] == [0.5, 1.0, 2.0]
    assert pipeline[3]['cat_max_ratio'] == 0.75
    plain = build_train_config('segformer-mit-b0', [DataSource('img', 'mask')], str(tmp_path), iters=10,
                               artifact_weight=1.0).train_dataloader.dataset.datasets[0].pipeline
    assert [t['type'] for t in plain] == ['LoadImageFromFile', 'LoadArtifactMask', 'RandomCrop', 'RandomFlip',
                                          'PackSegInputs']


@pytest.mark.slow
def test_multi_source_training_records_its_sources(zoo, tmp_path, capsys):
    """A real mmseg forward and backward on three sources with every augmentation; the summary records the sources,
    and a changed weight is refused. The 64-pixel images rescaled by 0.5 or 0.625 are smaller than the 48-pixel crop,
    so the crops are padded with the ignore label, which the class-weighted loss must skip."""
    out = str(tmp_path / 'loc')
    extra = ['--scales', '0.5', '0.625', '--cat-max-ratio', '0.75', '--photometric', '--edge-crops']
    args = ['localizer', 'train', '--out', out] + source_args(zoo) + SMALL + extra
    assert main(args) == 0, capsys.readouterr().err
    with open(osp.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['meta']['sources'] == [
        {'kind': 'synthetic', 'path': zoo['synth'], 'masks': None, 'weight': 2.0},
        {'kind': 'generator', 'path': zoo['img'], 'masks': zoo['mask'], 'weight': 1.0},
        {'kind': 'clean', 'path': zoo['clean'], 'masks': None, 'weight': 0.5},
    ]
    assert summary['meta']['scales'] == [0.5, 0.625] and summary['meta']['photometric'] is True
    assert summary['meta']['edge_crops'] is True and "type='EdgeRandomCrop'" in mmengine_log(out)
    record = summary['items']['localizer']
    assert record['status'] == 'done' and record['source_images'] == [3, 2, 2]
    assert record['images'] == 5 and record['clean_images'] == 2 and np.isfinite(record['final_loss'])
    assert "type='WeightedSourceSampler'" in mmengine_log(out) and 'avg_non_ignore=True' in mmengine_log(out)
    capsys.readouterr()
    # --gan/--masks comes before the --source options: another order of the sources is another setting.
    short = ['--gan', zoo['img'], '--masks', zoo['mask'], '--source', 'synthetic', zoo['synth'], 'weight=2',
             '--source', 'clean', zoo['clean'], 'weight=0.5']
    reordered = ['localizer', 'train', '--out', out] + short + SMALL + extra
    assert main(reordered) == 2
    assert 'other settings' in capsys.readouterr().err
    # --gan/--masks is the same generator source as --source generator: the finished run is kept.
    first = ['--gan', zoo['img'], '--masks', zoo['mask']]
    assert main(['localizer', 'train', '--out', str(tmp_path / 'short')] + first + SMALL) == 0
    capsys.readouterr()
    assert main(['localizer', 'train', '--out', str(tmp_path / 'short'), '--source', 'generator', zoo['img'],
                 zoo['mask']] + SMALL) == 0
    assert '0 done, 1 kept' in capsys.readouterr().out
    assert main(['localizer', 'train', '--out', out] + source_args(zoo, clean_weight='1') + SMALL + extra) == 2
    err = capsys.readouterr().err
    assert 'other settings' in err and '"weight": 0.5' in err and '"weight": 1.0' in err


def _not_a_zoo(tmp_path) -> str:
    """A folder of images and masks with the summary of another command."""
    folder = tmp_path / 'not_zoo'
    make_artifact_data(str(folder), names=('chelsea', ))
    (folder / 'summary.json').write_text(json.dumps({'meta': {'command': 'detect'}, 'items': {}}))
    return str(folder)


@pytest.mark.parametrize('case', [
    'unknown kind', 'weight 0', 'weight negative', 'weight nan', 'weight inf', 'weight text', 'generator one folder',
    'clean two folders', 'too many', 'empty generator', 'empty clean', 'empty synthetic', 'missing folder',
    'plain folder as synthetic', 'other command as synthetic', 'only clean', 'gan without masks', 'scale 0',
    'scale nan', 'too many scales'
])
def test_unusable_sources_are_refused(zoo, tmp_path, capsys, case):
    """Exit 2 with one line naming the option and the problem, before anything is written."""
    empty = tmp_path / 'empty'
    empty.mkdir()
    plain = make_artifact_data(str(tmp_path / 'plain'), names=('chelsea', ))
    gen = ['--source', 'generator', zoo['img'], zoo['mask']]
    cases = {
        'unknown kind': (['--source', 'gan', zoo['img']], ['--source gan: unknown kind', 'synthetic, generator']),
        'weight 0': (['--source', 'clean', zoo['clean'], 'weight=0'] + gen, ['--source clean', 'finite number in (0,']),
        'weight negative': (gen + ['--source', 'synthetic', zoo['synth'], 'weight=-1'], ['weight=-1.0', 'finite']),
        'weight nan': (gen + ['weight=nan'], ['--source generator', 'weight=nan', 'finite']),
        'weight inf': (gen + ['weight=inf'], ['weight=inf', 'finite number']),
        'weight text': (gen + ['weight=lots'], ['weight=lots: the weight is not a number']),
        'generator one folder': (['--source', 'generator', zoo['img']], ['needs IMAGES and MASKS folders']),
        'clean two folders': (gen + ['--source', 'clean', zoo['clean'], zoo['img']], ['a clean source takes one']),
        'too many': (['--source', 'generator', zoo['img'], zoo['mask'], zoo['clean']], ['--source generator', 'give']),
        'empty generator': (['--source', 'generator', str(empty), zoo['mask']], [f'{empty} holds no image']),
        'empty clean': (gen + ['--source', 'clean', str(empty)], ['--source clean', f'{empty} holds no']),
        'empty synthetic': (['--source', 'synthetic', str(empty)], ['--source synthetic', 'not a folder of `desra zoo '
                                                                                          'synth`']),
        'missing folder': (['--source', 'synthetic', str(tmp_path / 'absent')], ['absent is not a folder']),
        'plain folder as synthetic': (['--source', 'synthetic', osp.dirname(plain['img'])], ['not a folder of']),
        'other command as synthetic': (['--source', 'synthetic', _not_a_zoo(tmp_path)], ['not a folder of']),
        'only clean': (['--source', 'clean', zoo['clean']], ['no training source with artifact masks']),
        'gan without masks': (['--gan', zoo['img']], ['--gan and --masks go together']),
        'scale 0': (gen + ['--scales', '1', '0'], ['--scales 0.0: must be a finite number in [0.25, 4]']),
        'scale nan': (gen + ['--scales', 'nan'], ['--scales nan: must be a finite number']),
        'too many scales': (gen + ['--scales'] + ['1'] * 17, ['--scales 1.0 1.0', 'give 1 to 16 numbers']),
    }
    extra, names = cases[case]
    out = tmp_path / 'out'
    refused(['localizer', 'train', '--out', str(out)] + extra + SMALL, out, capsys, *names)


@settings(max_examples=25, deadline=None)
@given(st.one_of(st.floats(max_value=0), st.sampled_from([float('nan'), float('inf'), -float('inf'), 1e7, 1e308])))
def test_every_unusable_weight_is_refused(zoo, tmp_path_factory, weight):
    """Zero, negative, non-finite and huge weights, on any kind: exit 2 naming the source, nothing written."""
    out = tmp_path_factory.mktemp('weights') / 'out'
    for tokens in (['synthetic', zoo['synth']], ['generator', zoo['img'], zoo['mask']], ['clean', zoo['clean']]):
        args = ['localizer', 'train', '--out', str(out), '--source', 'synthetic', zoo['synth'], '--source'] + tokens
        assert main(args + [f'weight={weight}'] + SMALL) == 2
        assert not osp.exists(out)
    with pytest.raises(DesraSettingsError, match='the weight must be a finite number'):
        TrainingSource('clean', zoo['clean'], weight=weight)


def test_a_synthetic_item_without_its_files_is_refused(zoo, tmp_path, capsys):
    """An item the summary calls finished whose mask is gone: exit 2 naming the item."""
    import shutil
    synth = str(tmp_path / 'synth')
    shutil.copytree(zoo['synth'], synth)
    os.remove(osp.join(synth, 'mask', 'chelsea.png'))
    out = tmp_path / 'out'
    refused(['localizer', 'train', '--out', str(out), '--source', 'synthetic', synth] + SMALL, out, capsys,
            '--source synthetic', 'chelsea: no partner file')


def test_settings_take_sources_from_python(zoo, tmp_path):
    from desra_basicsr.jobs.localizer_train import LocalizerTrainSettings
    out = str(tmp_path / 'out')
    sources = [TrainingSource('synthetic', zoo['synth'], weight=3), TrainingSource('clean', zoo['clean'])]
    settings_ = LocalizerTrainSettings(out=out, sources=sources)
    assert settings_.sources == tuple(sources) and settings_.training_sources()[0].weight == 3.0
    short = LocalizerTrainSettings(out=out, gan='img', masks='mask', clean='clean', sources=sources[:1])
    assert short.training_sources() == (TrainingSource('generator', osp.abspath('img'), osp.abspath('mask')),
                                        TrainingSource('clean', osp.abspath('clean')), sources[0])
    assert short.training_sources()[0].describe() == f'--gan {osp.abspath("img")} --masks {osp.abspath("mask")}'
    with pytest.raises(DesraSettingsError, match='not a training source'):
        LocalizerTrainSettings(out=out, sources=['synthetic zoo/synth'])
    with pytest.raises(DesraSettingsError, match='no training source with artifact masks'):
        LocalizerTrainSettings(out=out, sources=sources[1:])
