"""The demo's real-photo corpus: manifest, fixed split, committed LR photos; and the detail-kept measure."""
import os.path as osp
import shutil

import numpy as np
import pytest

from desra_basicsr.demo import DemoSettings, check_settings
from desra_basicsr.demo_corpus import SPLITS, read_manifest, split_names
from desra_basicsr.errors import DesraInputError
from desra_basicsr.evaluation.detail import detail_outside
from desra_basicsr.image_io import list_images, read_image, stem

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MANIFEST = osp.join(REPO_ROOT, 'demo_data', 'manifest.csv')


def test_split_is_disjoint_large_enough_and_stable():
    photos = read_manifest(MANIFEST)
    names = split_names(photos)
    assert len(photos) >= 40
    assert len(names['finetune']) >= 15 and len(names['heldout']) >= 15 and names['train']
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            assert not set(names[a]) & set(names[b]), (a, b)
    # The split is made once: these photos are held out for good (the demo's headline table is about them).
    assert {'chelsea', 'coffee', 'rocket', 'astronaut', 'building', 'sudoku'} <= set(names['heldout'])
    assert {'motorcycle_left', 'motorcycle_right'} <= set(names['train'])  # a stereo pair stays in one split


def test_manifest_covers_every_committed_photo():
    photos = {p.name: p for p in read_manifest(MANIFEST)}
    for split in ('finetune', 'heldout'):
        folder = osp.join(REPO_ROOT, 'demo_data', f'{split}_lr')
        committed = [stem(n) for n in list_images(folder)]
        assert committed == sorted(p.name for p in photos.values() if p.split == split), split
        for name in committed:
            assert photos[name].licence and photos[name].author and photos[name].source_package
            img = read_image(osp.join(folder, f'{name}.png'))
            assert img.ndim == 3 and min(img.shape[:2]) >= 64


def test_manifest_errors_name_the_problem(tmp_path):
    path = tmp_path / 'manifest.csv'
    header = 'name,split,source_package,source_file,author,licence\n'
    path.write_text(header + 'a,train,p,f,x,CC0\na,heldout,p,f,x,CC0\n')
    with pytest.raises(DesraInputError, match='more than once: a'):
        read_manifest(str(path))
    path.write_text(header + 'a,test,p,f,x,CC0\n')
    with pytest.raises(DesraInputError, match=r"manifest.csv:2: unknown split 'test'"):
        read_manifest(str(path))
    path.write_text(header + 'a,train,p,,x,CC0\n')
    with pytest.raises(DesraInputError, match='every column needs a value'):
        read_manifest(str(path))


def test_demo_refuses_a_finetune_set_that_overlaps_the_heldout_set(tmp_path):
    heldout = DemoSettings().heldout_input
    with pytest.raises(DesraInputError, match='same folder'):
        check_settings(DemoSettings(finetune_input=heldout))
    mixed = tmp_path / 'finetune_lr'
    mixed.mkdir()
    finetune = DemoSettings().finetune_input
    for name in list_images(finetune)[:3]:
        shutil.copy(osp.join(finetune, name), str(mixed))
    shutil.copy(osp.join(heldout, list_images(heldout)[0]), str(mixed))
    with pytest.raises(DesraInputError, match=f'share 1 image.*{stem(list_images(heldout)[0])}'):
        check_settings(DemoSettings(finetune_input=str(mixed)))


def test_detail_measure_on_a_hand_made_case():
    rng = np.random.RandomState(0)
    gan = np.clip(128 + rng.normal(0, 20, (64, 96, 3)), 0, 255).astype(np.uint8)  # textured everywhere
    mask = np.zeros((64, 96), np.uint8)
    mask[:, :48] = 255  # the left half was detected as artifact
    # A fine-tuned output that flattened the artifact region but kept the rest exactly: all detail kept outside.
    kept = gan.copy()
    kept[:, :48] = 128
    values = detail_outside(gan, kept, mask)
    assert values['mad'] == 0 and values['std_ratio'] == pytest.approx(1.0, abs=0.05)
    assert values['outside'] == pytest.approx(0.5)
    # A model that became its MSE twin (flat everywhere) keeps no detail outside the masks.
    flat = np.full_like(gan, 128)
    values = detail_outside(gan, flat, mask)
    assert values['std_ratio'] < 0.1 and values['mad'] > 10
    # Half the texture amplitude outside: about half the local standard deviation.
    half = np.clip(128 + (gan.astype(np.float64) - 128) / 2, 0, 255).astype(np.uint8)
    assert detail_outside(gan, half, mask)['std_ratio'] == pytest.approx(0.5, abs=0.05)
    assert np.isnan(detail_outside(gan, kept, np.full_like(mask, 255))['std_ratio'])
    with pytest.raises(ValueError, match='shapes differ'):
        detail_outside(gan, kept[:32], mask)


def test_demo_outside_the_source_checkout_says_what_it_needs(monkeypatch, tmp_path):
    import desra_basicsr.demo as demo
    monkeypatch.setattr(demo, 'FINETUNE_TEMPLATE', str(tmp_path / 'options' / 'demo_finetune_desra.yml'))
    with pytest.raises(DesraInputError, match='needs the source checkout of desra-basicsr'):
        check_settings(DemoSettings())
