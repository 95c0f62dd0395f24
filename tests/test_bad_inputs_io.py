"""Bad image and mask files, NaN weights and device names through the readers and the real command lines.

Image headers that claim a huge (or zero) size are refused before decoding with one line naming the file; 0/1 masks
are binary for every command; a generator that outputs NaN fails its image; ``--device`` takes cpu, cuda or cuda:N.
"""
import json
import os
import os.path as osp
import struct
import zlib

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desra_basicsr.commands import main
from desra_basicsr.devices import resolve_device
from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.image_io import (MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_ENV, decode_image, decode_mask,
                                    image_dimensions, load_mask, read_image, read_mask, read_target_image, write_image,
                                    write_mask)
from desra_basicsr.inference import build_generator
from helpers.photos import jpeg_with_orientation, make_pair, skimage_photo_bgr

HUGE = 100000
VGG_KWARGS = {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 3, 'upscale': 4, 'act_type': 'prelu'}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header(width: int, height: int, depth: int = 8, colour: int = 0) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height``, with one tiny IDAT and IEND (not enough pixel data)."""
    ihdr = struct.pack('>IIBBBBB', width, height, depth, colour, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', ihdr) + _chunk(b'IDAT', zlib.compress(b'\0' * 16)) +
            _chunk(b'IEND', b''))


def jpeg_header(width: int, height: int) -> bytes:
    """A JPEG with a frame header declaring ``width`` x ``height``, an empty scan and the end-of-image marker."""
    sof = b'\xff\xc0' + struct.pack('>HBHHB', 11, 8, height, width, 1) + b'\x01\x11\x00'
    sos = b'\xff\xda' + struct.pack('>HB', 8, 1) + b'\x01\x00\x00\x3f\x00'
    return b'\xff\xd8' + sof + sos + b'\x00' * 8 + b'\xff\xd9'


def bmp_header(width: int, height: int) -> bytes:
    """A 24-bit BMP whose info header declares ``width`` x ``height`` (file size field equal to the data given)."""
    body = struct.pack('<IiiHHIIiiII', 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0) + b'\0' * 16
    return b'BM' + struct.pack('<IHHI', 14 + len(body), 0, 0, 54) + body


def tiff_header(width: int, height: int) -> bytes:
    """A little-endian TIFF whose first directory declares ``width`` x ``height`` (LONG tags) and no strips."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (262, 3, 1, 1)]
    ifd = struct.pack('<H', len(entries)) + b''.join(struct.pack('<HHII', *e) for e in entries) + b'\0' * 4
    return b'II*\x00' + struct.pack('<I', 8) + ifd


def webp_header(width: int, height: int) -> bytes:
    """An extended WebP (VP8X) declaring a ``width`` x ``height`` canvas (1 .. 2**24 each)."""
    vp8x = b'\0' * 4 + (width - 1).to_bytes(3, 'little') + (height - 1).to_bytes(3, 'little')
    body = b'WEBP' + b'VP8X' + struct.pack('<I', len(vp8x)) + vp8x
    return b'RIFF' + struct.pack('<I', len(body)) + body


def _write(path: str, content: bytes) -> str:
    with open(path, 'wb') as f:
        f.write(content)
    return path


def test_header_dimensions_of_every_format():
    img = np.zeros((37, 53, 3), np.uint8)
    for ext, params in [('.png', []), ('.jpg', []), ('.jpg', [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), ('.bmp', []),
                        ('.tif', []), ('.webp', []), ('.webp', [cv2.IMWRITE_WEBP_QUALITY, 101])]:
        assert image_dimensions(cv2.imencode(ext, img, params)[1].tobytes()) == (53, 37), ext
    for make in (png_header, jpeg_header, bmp_header, tiff_header, webp_header):
        assert image_dimensions(make(65535, 7)) == (65535, 7), make.__name__
    assert image_dimensions(b'GIF89a') is None


HEADERS = {'png': png_header, 'jpg': jpeg_header, 'bmp': bmp_header, 'tif': tiff_header, 'webp': webp_header}
#: The sides each header can hold: small ones (decoded), and anything up to the field's range (mostly refused).
SIDES = {
    'png': (0, 2**32 - 1),
    'jpg': (0, 2**16 - 1),
    'bmp': (-2**31, 2**31 - 1),
    'tif': (0, 2**32 - 1),
    'webp': (1, 2**24),
}


@st.composite
def crafted_files(draw):
    """(extension, bytes): a header with random sides, a truncated or wrong-magic variant of it, or random bytes."""
    ext = draw(st.sampled_from(sorted(HEADERS)))
    lo, hi = SIDES[ext]
    sides = st.one_of(st.integers(max(lo, 0), 70), st.integers(lo, hi), st.sampled_from([HUGE % (hi + 1), hi]))
    content = HEADERS[ext](draw(sides), draw(sides))
    damage = draw(st.sampled_from(['none', 'truncate', 'magic', 'random']))
    if damage == 'truncate':
        content = content[:draw(st.integers(0, len(content) - 1))]
    elif damage == 'magic':
        content = draw(st.binary(min_size=2, max_size=4)) + content[4:]
    elif damage == 'random':
        content = draw(st.binary(max_size=64))
    return ext, content


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(crafted=crafted_files())
def test_every_reader_returns_an_image_or_names_the_file(crafted, tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, str(64 * 64))  # what passes the check is small enough to decode
    ext, content = crafted
    path = _write(str(tmp_path / f'crafted.{ext}'), content)
    readers = [lambda: read_image(path), lambda: read_mask(path), lambda: load_mask(path)[0],
               lambda: decode_image(content, path), lambda: decode_mask(content, path)[0]]
    for reader in readers:
        try:
            out = reader()
        except DesraInputError as err:
            assert str(err).startswith(f'{path}: ') and '\n' not in str(err)
        else:
            assert isinstance(out, np.ndarray) and 0 < out.size <= 64 * 64 * 3


def test_pixel_limit_and_its_environment_variable(tmp_path, monkeypatch):
    big = _write(str(tmp_path / 'big.png'), png_header(HUGE, HUGE))
    with pytest.raises(DesraInputError, match=r'big\.png: 100000x100000 image .* exceeds the limit of 268435456'):
        read_image(big)
    assert MAX_IMAGE_PIXELS == 2**28
    with pytest.raises(DesraInputError, match=r'zero\.png: declares a 0x5 image'):
        read_mask(_write(str(tmp_path / 'zero.png'), png_header(0, 5)))
    photo = str(tmp_path / 'photo.png')
    write_image(photo, np.zeros((20, 20, 3), np.uint8))
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, '399')
    with pytest.raises(DesraInputError, match=f'20x20 image .* set {MAX_IMAGE_PIXELS_ENV}'):
        read_image(photo)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, '400')
    assert read_image(photo).shape == (20, 20, 3)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, '1e9')
    with pytest.raises(DesraSettingsError, match=f'{MAX_IMAGE_PIXELS_ENV}=1e9: must be a positive whole number'):
        read_image(photo)


def _one_error_line(err: str, name: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1 and name in lines[0] and 'error: error' not in lines[0], err
    assert 'Traceback' not in err
    return lines[0]


@pytest.fixture()
def sr_pair(tmp_path):
    """MSE/GAN folders with one real pair (chelsea) and one GAN image whose header claims 100000x100000."""
    mse, gan = tmp_path / 'mse', tmp_path / 'gan'
    mse.mkdir()
    gan.mkdir()
    y_mse, y_gan, _ = make_pair('chelsea', 0, 0, 32, 32)
    for name in ('chelsea', 'huge'):
        write_image(str(mse / f'{name}.png'), y_mse[:64, :64])
    write_image(str(gan / 'chelsea.png'), y_gan[:64, :64])
    _write(str(gan / 'huge.png'), png_header(HUGE, HUGE))
    return str(mse), str(gan)


def _summary(out: str) -> dict:
    with open(osp.join(out, 'summary.json')) as f:
        return json.load(f)['items']


def test_huge_header_in_detect_and_pseudo_gt_fails_that_file(sr_pair, tmp_path, capsys):
    mse, gan = sr_pair
    masks = str(tmp_path / 'masks')
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', masks]) == 1
    line = _one_error_line(capsys.readouterr().err, 'huge.png')
    assert '100000x100000 image' in line
    items = _summary(masks)
    assert items['chelsea']['status'] == 'done' and items['huge']['status'] == 'error'
    _write(osp.join(masks, 'huge.png'), png_header(HUGE, HUGE))
    out = str(tmp_path / 'pseudo')
    assert main(['pseudo-gt', '--mse', mse, '--gan', gan, '--masks', masks, '--out', out]) == 1
    _one_error_line(capsys.readouterr().err, 'huge.png')
    assert sorted(os.listdir(out)) == ['chelsea.png', 'summary.json']


def test_huge_header_in_evaluate_compare_and_localizer(tmp_path, capsys):
    pred, gt = tmp_path / 'pred', tmp_path / 'gt'
    pred.mkdir()
    gt.mkdir()
    write_mask(str(gt / 'a.png'), np.zeros((8, 8), bool))
    _write(str(pred / 'a.png'), png_header(HUGE, HUGE))
    assert main(['evaluate', '--pred', str(pred), '--gt', str(gt)]) == 1
    _one_error_line(capsys.readouterr().err, str(pred / 'a.png'))
    assert main(['compare', '--before', str(gt), '--after', str(pred)]) == 1
    _one_error_line(capsys.readouterr().err, str(pred / 'a.png'))
    img = tmp_path / 'img'
    img.mkdir()
    _write(str(img / 'a.png'), png_header(HUGE, HUGE))
    # The localiser trains on the whole set at once: a file that fails the check makes the set unusable (exit 2).
    assert main(['localizer', 'train', '--gan', str(img), '--masks', str(gt), '--out', str(tmp_path / 'loc'),
                 '--iters', '1', '--arch', 'segformer-mit-b0']) == 2
    _one_error_line(capsys.readouterr().err, str(img / 'a.png'))


def test_labelme_size_over_the_limit_is_refused_before_allocating(tmp_path, capsys):
    folder = tmp_path / 'json'
    folder.mkdir()
    shapes = [{'label': 'artifact', 'shape_type': 'rectangle', 'points': [[0, 0], [3, 3]]}]
    for name, height, width in [('huge', HUGE, HUGE), ('bool', True, 8), ('text', '8', 8), ('ok', 6, 8)]:
        with open(folder / f'{name}.json', 'w') as f:
            json.dump({'imageHeight': height, 'imageWidth': width, 'shapes': shapes}, f)
    out = str(tmp_path / 'masks')
    assert main(['labelme2mask', '--json', str(folder), '--out', out]) == 1
    err = capsys.readouterr().err
    assert 'huge.json: 100000x100000 image (10000000000 pixels) exceeds the limit' in err
    assert "bool.json: needs positive integer imageHeight and imageWidth, got True, 8" in err
    items = _summary(out)
    assert items['ok']['status'] == 'done' and not osp.exists(osp.join(out, 'huge.png'))
    assert all(items[name]['status'] == 'error' for name in ('huge', 'bool', 'text'))


def _mask_folders(tmp_path, names):
    folders = [tmp_path / name for name in names]
    for folder in folders:
        folder.mkdir()
    return folders


def test_zero_one_masks_are_binary_in_evaluate_and_compare(tmp_path, capsys):
    pred, gt, after = _mask_folders(tmp_path, ('pred', 'gt', 'after'))
    region = np.zeros((8, 8), np.uint8)
    region[2:5, 2:5] = 1
    cv2.imwrite(str(pred / 'a.png'), region)  # 0/1, as labelme or numpy exports write
    write_mask(str(gt / 'a.png'), region > 0)  # 0/255
    write_mask(str(after / 'a.png'), np.zeros((8, 8), bool))
    json_path = str(tmp_path / 'scores.json')
    assert main(['evaluate', '--pred', str(pred), '--gt', str(gt), '--json', json_path]) == 0
    with open(json_path) as f:
        assert json.load(f)['per_image']['a']['iou'] == pytest.approx(100.0)
    assert main(['compare', '--before', str(pred), '--after', str(after), '--gt', str(gt), '--json', json_path]) == 0
    with open(json_path) as f:
        summary = json.load(f)['summary']
    assert summary['iou_before'] == pytest.approx(100.0) and summary['iou_after'] == 0.0
    assert 'notice' not in capsys.readouterr().err


def test_masks_that_are_not_binary_are_named_once_per_file(tmp_path, capsys):
    pred, gt = _mask_folders(tmp_path, ('pred', 'gt'))
    soft = np.full((8, 8), 40, np.uint8)
    soft[:4] = 200
    cv2.imwrite(str(pred / 'a.png'), soft)
    write_mask(str(gt / 'a.png'), soft > 127)
    for _ in range(2):
        assert main(['evaluate', '--pred', str(pred), '--gt', str(gt)]) == 0
    err = capsys.readouterr().err
    assert err.count('notice: ') == 1 and f'{pred / "a.png"}: mask is not binary' in err
    mixed = np.zeros((4, 4), np.uint8)
    mixed[0, :2] = (1, 255)
    assert decode_mask(cv2.imencode('.png', mixed)[1].tobytes(), 'mixed')[0][0, :2].tolist() == [False, True]
    assert decode_mask(cv2.imencode('.png', np.ones((4, 4), np.uint16))[1].tobytes(), 'ones')[0].all()


def test_nan_weights_fail_each_image_with_a_message(tmp_path, capsys):
    torch.manual_seed(0)
    state = build_generator('SRVGGNetCompact', VGG_KWARGS).state_dict()
    first = next(key for key in state if key.endswith('weight'))
    state[first][0, 0, 0, 0] = float('nan')
    weights = str(tmp_path / 'nan.pth')
    torch.save({'params_ema': state}, weights)
    lr = tmp_path / 'lr'
    lr.mkdir()
    write_image(str(lr / 'chelsea.png'), make_pair('chelsea', 0, 0, 8, 8)[0][:16, :16])
    out = str(tmp_path / 'sr')
    assert main(['sr', '--arch', 'SRVGGNetCompact', '--arch-opt', *[f'{k}={v}' for k, v in VGG_KWARGS.items()],
                 '--weights', weights, '--input', str(lr), '--out', out, '--device', 'cpu']) == 1
    line = _one_error_line(capsys.readouterr().err, 'chelsea.png')
    assert 'NaN/inf' in line and weights in line
    assert _summary(out)['chelsea']['status'] == 'error' and not osp.exists(osp.join(out, 'chelsea.png'))


@pytest.mark.parametrize('device, message', [('mps', 'use cpu, cuda or cuda:N'), ('cpu\n', 'use cpu, cuda or cuda:N'),
                                             ('cuda:x', 'use cpu, cuda or cuda:N'),
                                             ('cuda', 'CUDA is not available'),
                                             ('cuda:1', 'CUDA is not available')])
def test_device_names(device, message, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(DesraSettingsError, match=f'--device {device}: {message}'):
        resolve_device(device)
    assert resolve_device('auto') == torch.device('cpu') and resolve_device('cpu') == torch.device('cpu')


def test_cuda_index_beyond_the_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    assert resolve_device('cuda:1', local_rank=1) == torch.device('cuda', 0)
    with pytest.raises(DesraSettingsError, match=r'--device cuda:2: this machine has 2 GPU\(s\)'):
        resolve_device('cuda:2')


def test_sr_command_refuses_other_devices(tmp_path, capsys):
    lr = tmp_path / 'lr'
    lr.mkdir()
    write_image(str(lr / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    weights = str(tmp_path / 'w.pth')
    torch.save({'params': build_generator('SRVGGNetCompact', VGG_KWARGS).state_dict()}, weights)
    assert main(['sr', '--arch', 'SRVGGNetCompact', '--arch-opt', *[f'{k}={v}' for k, v in VGG_KWARGS.items()],
                 '--weights', weights, '--input', str(lr), '--out', str(tmp_path / 'out'), '--device', 'mps']) == 2
    assert 'error: --device mps: use cpu, cuda or cuda:N' in capsys.readouterr().err


@pytest.mark.parametrize('orientation', range(1, 9))
def test_a_target_photo_basicsr_would_turn_is_refused(orientation, tmp_path):
    """Each EXIF orientation: refused exactly when BasicSR's ``imfrombytes`` loads other pixels than stored."""
    from basicsr.utils import imfrombytes
    photo = skimage_photo_bgr('rocket')[:40, :64]
    path = str(tmp_path / 'photo.jpg')
    with open(path, 'wb') as f:
        f.write(jpeg_with_orientation(photo, orientation))
    with open(path, 'rb') as f:
        basicsr_view = imfrombytes(f.read(), float32=False)
    stored = read_image(path)
    assert stored.shape == photo.shape  # this module reads pixels as stored, whatever the tag
    if orientation == 1:
        np.testing.assert_array_equal(read_target_image(path), stored)
        np.testing.assert_array_equal(basicsr_view, stored)
    else:
        assert basicsr_view.shape != stored.shape or not np.array_equal(basicsr_view, stored)
        with pytest.raises(DesraInputError, match=r'photo\.jpg: its EXIF orientation tag turns it'):
            read_target_image(path)
