"""`desra report`: grids, the HTML page, sorting by area, and a headless-Chromium rendering of the page."""
import os
import re
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from desra_basicsr.commands import main
from desra_basicsr.evaluation.report import CAPTION_HEIGHT
from desra_basicsr.image_io import read_image, write_image, write_mask

TILE = 48
# Per image: (LR, MSE-SR, GAN-SR) solid BGR colours, all distinct and far from the red overlay blends.
COLOURS = {
    'alpha': ((255, 255, 0), (0, 128, 0), (128, 0, 128)),
    'beta': ((0, 255, 255), (255, 0, 0), (0, 128, 128)),
    'gamma': ((160, 160, 160), (0, 255, 0), (60, 20, 0)),
}
# Mask rows marked per image: areas 8/64, 32/64, 16/64 of the image -> page order beta, gamma, alpha.
MASK_ROWS = {'alpha': 8, 'beta': 32, 'gamma': 16}


def make_inputs(root, finetuned=False):
    folders = {k: root / k for k in ('lr', 'mse', 'gan', 'masks', 'tuned', 'tuned_masks')}
    for name, (lr, mse, gan) in COLOURS.items():
        write_image(str(folders['lr'] / f'{name}.png'), np.full((16, 16, 3), lr, np.uint8))
        write_image(str(folders['mse'] / f'{name}.png'), np.full((64, 64, 3), mse, np.uint8))
        write_image(
            str(folders['gan'] / f'{name}.jpg' if name == 'gamma' else folders['gan'] / f'{name}.png'),
            np.full((64, 64, 3), gan, np.uint8))
        mask = np.zeros((64, 64), bool)
        mask[:MASK_ROWS[name]] = True
        write_mask(str(folders['masks'] / f'{name}.png'), mask)
        if finetuned:
            write_image(str(folders['tuned'] / f'{name}.png'), np.full((64, 64, 3), gan, np.uint8))
            write_mask(str(folders['tuned_masks'] / f'{name}.png'), np.zeros((64, 64), bool))
    args = [
        '--lr',
        str(folders['lr']), '--mse',
        str(folders['mse']), '--gan',
        str(folders['gan']), '--masks',
        str(folders['masks']), '--tile-height',
        str(TILE)
    ]
    if finetuned:
        args += ['--finetuned', str(folders['tuned']), '--finetuned-masks', str(folders['tuned_masks'])]
    return folders, args


def test_report_grids_and_page(tmp_path, capsys):
    folders, args = make_inputs(tmp_path)
    out = tmp_path / 'report'
    assert main(['report', '--out', str(out)] + args) == 0
    page = (out / 'index.html').read_text()
    # Sorted by area, largest first; every grid embedded.
    assert [m for m in re.findall(r'<h2>(\w+)</h2>', page)] == ['beta', 'gamma', 'alpha']
    assert page.count('src="data:image/png;base64,') == 3
    assert 'artifact area 50.00% (2048 pixels)' in page
    grid = read_image(str(out / 'grids' / 'beta.png'))
    # Five 48x48 tiles (LR, MSE, GAN, overlay, pseudo-GT) with 4-pixel gaps under a caption strip.
    assert grid.shape == (TILE + CAPTION_HEIGHT, 5 * TILE + 4 * 4, 3)
    body = grid[CAPTION_HEIGHT:]
    lr, mse, gan = COLOURS['beta']
    np.testing.assert_array_equal(body[:, :TILE].reshape(-1, 3)[0], lr)
    np.testing.assert_array_equal(body[TILE - 1, TILE + 4], mse)
    np.testing.assert_array_equal(body[TILE - 1, 2 * (TILE + 4)], gan)
    # Pseudo-GT: masked top half from the MSE output, the rest from the GAN output.
    pseudo = body[:, 4 * (TILE + 4):]
    np.testing.assert_array_equal(pseudo[2, TILE // 2], mse)
    np.testing.assert_array_equal(pseudo[TILE - 2, TILE // 2], gan)
    # Overlay: the masked half is tinted red.
    overlay = body[:, 3 * (TILE + 4):3 * (TILE + 4) + TILE]
    assert overlay[TILE // 4, TILE // 2, 2] > overlay[TILE - 2, TILE // 2, 2]

    link_out = tmp_path / 'linked'
    assert main(['report', '--out', str(link_out), '--link'] + args) == 0
    assert 'src="grids/beta.png"' in (link_out / 'index.html').read_text()


def test_linked_grids_are_urls_of_their_files(tmp_path):
    """With --link, a file name is data in the page: '#', '?' and '%' do not cut the URL, a quote does not end the
    attribute; each src, unescaped and unquoted, names the grid written for that image."""
    import html
    import urllib.parse
    folders = {k: tmp_path / k for k in ('lr', 'mse', 'gan', 'masks')}
    names = ['a"><img src=x onerror=alert(1)>', 'b#1', 'c%20d', 'e?x']
    for name in names:
        write_image(str(folders['lr'] / f'{name}.png'), np.zeros((16, 16, 3), np.uint8))
        for key in ('mse', 'gan'):
            write_image(str(folders[key] / f'{name}.png'), np.zeros((64, 64, 3), np.uint8))
        write_mask(str(folders['masks'] / f'{name}.png'), np.zeros((64, 64), bool))
    out = tmp_path / 'out'
    args = [x for k, v in folders.items() for x in (f'--{k}', str(v))]
    assert main(['report', '--out', str(out), '--link', '--tile-height', str(TILE)] + args) == 0
    page = (out / 'index.html').read_text()
    assert 'onerror=alert(1)>.png' not in page
    sources = re.findall(r'<img class="grid" src="([^"]*)"', page)
    assert len(sources) == len(names)
    files = {urllib.parse.unquote(html.unescape(src)) for src in sources}
    assert files == {f'grids/{name}.png' for name in names}
    assert all((out / f).is_file() for f in files)


def test_a_run_replaces_the_grids_and_a_failed_run_keeps_the_last_report(tmp_path):
    folders, args = make_inputs(tmp_path)
    out = tmp_path / 'out'
    assert main(['report', '--out', str(out), '--link'] + args) == 0
    page = (out / 'index.html').read_text()
    # a size mismatch found at the second image: no grid of this run is left, the last report stays whole
    write_image(str(folders['mse'] / 'gamma.png'), np.zeros((60, 60, 3), np.uint8))
    assert main(['report', '--out', str(out), '--link'] + args) == 1
    assert (out / 'index.html').read_text() == page
    assert sorted(os.listdir(out)) == ['grids', 'index.html']
    assert sorted(os.listdir(out / 'grids')) == ['alpha.png', 'beta.png', 'gamma.png']
    # a report of fewer images keeps no grid of the others
    (folders['mse'] / 'gamma.png').unlink()
    assert main(['report', '--out', str(out), '--link'] + args) == 0
    assert sorted(os.listdir(out / 'grids')) == ['alpha.png', 'beta.png']


def test_report_with_finetuned_and_missing(tmp_path, capsys):
    folders, args = make_inputs(tmp_path, finetuned=True)
    (folders['mse'] / 'alpha.png').unlink()
    out = tmp_path / 'report'
    assert main(['report', '--out', str(out)] + args) == 0
    assert 'missing from at least one folder' in capsys.readouterr().err
    page = (out / 'index.html').read_text()
    assert re.findall(r'<h2>(\w+)</h2>', page) == ['beta', 'gamma'] and 'fine-tuned 0.00%' in page
    assert read_image(str(out / 'grids' / 'gamma.png')).shape[1] == 6 * TILE + 5 * 4


def test_report_bad_input(tmp_path, capsys):
    folders, args = make_inputs(tmp_path)
    write_mask(str(folders['masks'] / 'beta.png'), np.zeros((10, 10), bool))
    assert main(['report', '--out', str(tmp_path / 'r')] + args) == 1
    assert 'beta.png: size 10x10 differs' in capsys.readouterr().err
    assert not (tmp_path / 'r' / 'index.html').exists()


def test_a_fine_tuned_output_of_another_size_is_an_input_failure(tmp_path, capsys):
    """Every tile is checked against the GAN-SR output's size, not only MSE-SR and the mask (it was stretched)."""
    folders, args = make_inputs(tmp_path, finetuned=True)
    write_image(str(folders['tuned'] / 'beta.png'), np.zeros((16, 20, 3), np.uint8))
    write_mask(str(folders['tuned_masks'] / 'beta.png'), np.zeros((16, 20), bool))
    assert main(['report', '--out', str(tmp_path / 'r')] + args) == 1
    assert 'beta.png: size 20x16 differs from the GAN-SR output' in capsys.readouterr().err
    assert not (tmp_path / 'r' / 'index.html').exists()


CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')


@pytest.mark.skipif(CHROMIUM is None, reason='chromium is not installed (CI installs Debian `chromium` in .ci/run)')
def test_report_renders_in_headless_chromium(tmp_path):
    folders, args = make_inputs(tmp_path)
    out = tmp_path / 'report'
    assert main(['report', '--out', str(out)] + args) == 0
    shot = tmp_path / 'shot.png'
    cmd = [
        CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars',
        f'--user-data-dir={tmp_path / "profile"}', f'--screenshot={shot}', '--window-size=800,1000',
        (out / 'index.html').as_uri()
    ]
    subprocess.run(cmd, check=True, timeout=120, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    img = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] == (1000, 800)
    assert img.std() > 10, 'screenshot is blank'
    # Every tile of every image is on screen: each solid colour covers most of a 48x48 tile.
    for name, colours in COLOURS.items():
        for colour in colours:
            close = np.all(np.abs(img.astype(int) - np.array(colour)) <= 8, axis=2)
            assert close.sum() >= 0.8 * TILE * TILE, f'{name}: colour {colour} not rendered'
