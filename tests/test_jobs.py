"""The folder-job core and the Python API under the ``desra`` commands: outputs that are never silently wrong.

Resumes with other settings or inputs, ``--out`` inside an input, colour and non-binary masks, misaligned masks,
truncated images, exit codes of every command, a killed run resumed, and a quick ``desra --help``.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch

from desra_basicsr.checkpoints import load_weights, read_checkpoint
from desra_basicsr.commands import main
from desra_basicsr.devices import cuda_index
from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.image_io import decode_image, load_mask, read_image, read_mask, write_image, write_mask
from desra_basicsr.jobs import detect, sr
from desra_basicsr.jobs.core import RankError, _Group
from helpers.paths import REPO_ROOT
from helpers.photos import make_pair, skimage_photo_bgr
from helpers.training import train_env

PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'camera')
VGG_KWARGS = {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 3, 'upscale': 4, 'act_type': 'prelu'}


def make_sr_pairs(root, names=PHOTOS, size=160):
    """MSE/GAN folders of photo crops (GAN: the crop with painted stripes over a smooth part)."""
    folders = {key: osp.join(root, key) for key in ('mse', 'gan')}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    for name in names:
        mse, gan, _ = make_pair(name, 0, 0, size // 2, size // 2)
        write_image(osp.join(folders['mse'], f'{name}.png'), mse[:size, :size])
        write_image(osp.join(folders['gan'], f'{name}.png'), gan[:size, :size])
    return folders['mse'], folders['gan']


def images_of(folder):
    return {f: cv2.imread(osp.join(folder, f), cv2.IMREAD_UNCHANGED).tobytes() for f in sorted(os.listdir(folder))
            if f.endswith('.png')}


def summary_of(folder):
    with open(osp.join(folder, 'summary.json')) as f:
        return json.load(f)


def temp_files(folder):
    return [f for _, _, files in os.walk(folder) for f in files if f.startswith('.desra-tmp-')]


# ------------------------------------------------------------------------------------------ resume and refusal
def test_resume_with_other_settings_is_refused_and_overwrite_recomputes(tmp_path, capsys):
    mse, gan = make_sr_pairs(str(tmp_path))
    out, fresh = str(tmp_path / 'out'), str(tmp_path / 'fresh')
    args = ['detect', '--mse', mse, '--gan', gan, '--min-area', '100']
    assert main(args + ['--out', out]) == 0
    first = images_of(out)
    capsys.readouterr()
    assert main(args + ['--out', out, '--threshold', '0.3']) == 2
    err = capsys.readouterr().err
    assert 'other settings' in err and 'threshold: 0.7 -> 0.3' in err and '--overwrite' in err
    assert images_of(out) == first
    assert main(args + ['--out', out, '--threshold', '0.3', '--overwrite']) == 0
    assert main(args + ['--out', fresh, '--threshold', '0.3']) == 0
    assert images_of(out) == images_of(fresh) != first
    assert summary_of(out)['items'] == summary_of(fresh)['items']
    assert summary_of(out)['meta']['threshold'] == 0.3


def test_changed_input_file_is_refused(tmp_path, capsys):
    mse, gan = make_sr_pairs(str(tmp_path), names=('chelsea', 'coffee'))
    out = str(tmp_path / 'out')
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', out]) == 0
    write_image(osp.join(gan, 'coffee.png'), read_image(osp.join(mse, 'coffee.png')))
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', out]) == 2
    assert 'inputs of 1 finished item(s) changed' in capsys.readouterr().err


def test_input_written_again_with_the_same_bytes_resumes(tmp_path, capsys):
    mse, gan = make_sr_pairs(str(tmp_path), names=('chelsea', 'coffee'))
    out = str(tmp_path / 'out')
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', out]) == 0
    first, stamp = images_of(out), os.stat(osp.join(out, 'coffee.png')).st_mtime_ns
    path = osp.join(gan, 'coffee.png')
    before = os.stat(path).st_mtime_ns
    write_image(path, read_image(path))  # the same pixels, the same PNG bytes, a new modification time
    os.utime(path, ns=(before + 10**9, before + 10**9))
    capsys.readouterr()
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', out]) == 0
    assert 'changed' not in capsys.readouterr().err
    assert images_of(out) == first and os.stat(osp.join(out, 'coffee.png')).st_mtime_ns == stamp  # kept, not redone


def test_summary_without_digests_still_resumes_on_size_and_mtime(tmp_path, capsys):
    mse, gan = make_sr_pairs(str(tmp_path), names=('chelsea', 'coffee'))
    out = str(tmp_path / 'out')
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', out]) == 0
    summary = summary_of(out)
    for record in summary['items'].values():  # as summaries written before the digest was recorded
        assert all(len(sig) == 3 for sig in record['sources'].values())
        record['sources'] = {path: sig[:2] for path, sig in record['sources'].items()}
    with open(osp.join(out, 'summary.json'), 'w') as f:
        json.dump(summary, f)
    stamp = os.stat(osp.join(out, 'coffee.png')).st_mtime_ns
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', out]) == 0
    assert os.stat(osp.join(out, 'coffee.png')).st_mtime_ns == stamp
    path = osp.join(gan, 'coffee.png')
    before = os.stat(path).st_mtime_ns
    os.utime(path, ns=(before + 10**9, before + 10**9))  # no digest to tell the content: counted as changed
    capsys.readouterr()
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', out]) == 2
    assert 'inputs of 1 finished item(s) changed' in capsys.readouterr().err


def test_sr_with_other_weights_is_refused(tmp_path, capsys):
    from desra_basicsr.inference import build_generator
    lr = tmp_path / 'lr'
    lr.mkdir()
    write_image(str(lr / 'chelsea.png'), skimage_photo_bgr('chelsea')[:24, :32])
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(str(tmp_path / f'g{seed}.pth'))
        torch.save({'params': build_generator('SRVGGNetCompact', VGG_KWARGS).state_dict()}, paths[-1])
    out = str(tmp_path / 'out')

    def run(weights, overwrite=False):
        return sr.run(
            sr.SRSettings(input=str(lr), out=out, arch='SRVGGNetCompact', arch_opt=VGG_KWARGS, weights=weights,
                          device='cpu', overwrite=overwrite, progress=False))

    first = run(paths[0])
    assert first.done == 1 and first.summary['meta']['weights_sha256']['weights']
    with pytest.raises(DesraSettingsError, match='weights'):
        run(paths[1])
    before = images_of(out)
    assert run(paths[1], overwrite=True).done == 1
    assert images_of(out) != before


def test_out_inside_an_input_folder_is_refused(tmp_path, capsys):
    mse, gan = make_sr_pairs(str(tmp_path), names=('chelsea', ))
    before = sorted(os.listdir(gan))
    for out in (gan, osp.join(gan, 'masks')):
        assert main(['detect', '--mse', mse, '--gan', gan, '--out', out]) == 2
        assert 'input folder' in capsys.readouterr().err
    assert sorted(os.listdir(gan)) == before
    masks = str(tmp_path / 'masks')
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', masks]) == 0
    # pseudo-gt into detect's output folder: the masks folder is an input
    assert main(['pseudo-gt', '--mse', mse, '--gan', gan, '--masks', masks, '--out', masks]) == 2
    # and a folder written by another job is refused, not taken as finished outputs
    other = str(tmp_path / 'other')
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', other]) == 0
    assert main(['pseudo-gt', '--mse', mse, '--gan', gan, '--masks', masks, '--out', other]) == 2
    assert 'holds the outputs of `desra detect`' in capsys.readouterr().err


def test_foreign_outputs_without_summary_are_refused(tmp_path, capsys):
    mse, gan = make_sr_pairs(str(tmp_path), names=('chelsea', ))
    out = tmp_path / 'out'
    out.mkdir()
    write_mask(str(out / 'chelsea.png'), np.ones((8, 8), bool))
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', str(out)]) == 2
    assert 'no summary.json' in capsys.readouterr().err
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', str(out), '--overwrite']) == 0
    assert read_mask(str(out / 'chelsea.png')).shape == (160, 160)


def test_unusable_out_is_refused_before_any_work(tmp_path, capsys):
    mse, gan = make_sr_pairs(str(tmp_path), names=('chelsea', ))
    a_file = tmp_path / 'file'
    a_file.write_text('x')
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', str(a_file)]) == 2
    assert 'not a folder' in capsys.readouterr().err
    # /proc takes no new files, whoever runs the tests (root can write anywhere else)
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', '/proc/desra-test-out']) == 2
    assert '/proc/desra-test-out: cannot write to /proc' in capsys.readouterr().err


def test_stale_temporary_files_are_removed(tmp_path):
    mse, gan = make_sr_pairs(str(tmp_path), names=('chelsea', ))
    out = str(tmp_path / 'out')
    settings = detect.DetectSettings(mse=mse, gan=gan, out=out, progress=False)
    detect.run(settings)
    stale = osp.join(out, '.desra-tmp-ab12cd_9.png')
    with open(stale, 'wb') as f:
        f.write(b'half a png')
    mine = [osp.join(out, name) for name in ('notes.tmp.txt', '.photo.20240101.tmp.png')]  # not the job's: left alone
    for path in mine:
        with open(path, 'w') as f:
            f.write('mine')
    assert detect.run(settings).skipped == 1
    assert not osp.exists(stale) and all(osp.exists(path) for path in mine)


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    import cv2
    from desra_basicsr.jobs import core, detect
    core.SUMMARY_INTERVAL = 0  # write the summary after every item
    calls = {'n': 0}
    original = cv2.imwrite

    def imwrite(path, img, *args):
        calls['n'] += 1
        if calls['n'] == 3:  # the third mask: write half of it, then die as with kill -9
            with open(path, 'wb') as f:
                f.write(b'\\x89PNG half')
            os.kill(os.getpid(), signal.SIGKILL)
        return original(path, img, *args)

    cv2.imwrite = imwrite
    detect.run(detect.DetectSettings(mse=sys.argv[1], gan=sys.argv[2], out=sys.argv[3], min_area=100,
                                     progress=False))
""")


def test_killed_run_resumed_equals_an_uninterrupted_run(tmp_path, capsys):
    mse, gan = make_sr_pairs(str(tmp_path))
    killed, clean = str(tmp_path / 'killed'), str(tmp_path / 'clean')
    proc = subprocess.run([sys.executable, '-c', KILLED_RUN, mse, gan, killed], env=train_env(), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert temp_files(killed)  # the kill left a half-written temporary file
    partial = summary_of(killed)
    assert sorted(partial['items']) == ['astronaut', 'camera']  # both finished items kept their records
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', killed, '--min-area', '100']) == 0
    assert '3 done, 2 kept' in capsys.readouterr().out
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', clean, '--min-area', '100']) == 0
    assert summary_of(killed) == summary_of(clean)
    assert partial['items'] == {name: summary_of(clean)['items'][name] for name in ('astronaut', 'camera')}
    assert images_of(killed) == images_of(clean)
    assert not temp_files(killed)


def test_rank_that_stops_answering_gives_a_clear_error():
    group = _Group(1)

    def stalled():
        raise RuntimeError('[Rank 0]: Timed out waiting 1800000ms for recv operation to complete')

    with pytest.raises(RankError, match='another rank did not answer within 0:30:00.*run the command again'):
        group._call('gathering the results of every rank', stalled)


# ------------------------------------------------------------------------------------------ masks and images
def test_colour_masks_are_read_whole_or_refused(tmp_path):
    red = np.zeros((20, 30, 3), np.uint8)
    red[5:10, 5:10, 2] = 255  # BGR: red only
    write_image(str(tmp_path / 'red.png'), red)
    with pytest.raises(DesraInputError, match='red.png: colour mask whose red, green and blue channels differ'):
        read_mask(str(tmp_path / 'red.png'))
    assert read_mask(str(tmp_path / 'red.png'), channel=0).sum() == 25
    assert read_mask(str(tmp_path / 'red.png'), channel=2).sum() == 0
    white = np.repeat(red[:, :, 2:], 3, axis=2)
    write_image(str(tmp_path / 'white.png'), white)
    assert read_mask(str(tmp_path / 'white.png')).sum() == 25
    rgba = np.dstack([white, np.full((20, 30), 255, np.uint8)])
    write_image(str(tmp_path / 'rgba.png'), rgba)
    assert read_mask(str(tmp_path / 'rgba.png')).sum() == 25
    rgba[:, :, 3] = 0
    rgba[0, 0, 3] = 255
    write_image(str(tmp_path / 'alpha.png'), rgba)
    with pytest.raises(DesraInputError, match='transparency'):
        read_mask(str(tmp_path / 'alpha.png'))
    assert read_mask(str(tmp_path / 'alpha.png'), channel=3).sum() == 1


def test_pseudo_gt_with_a_red_mask_fails_or_uses_the_named_channel(tmp_path, capsys):
    mse, gan = make_sr_pairs(str(tmp_path), names=('chelsea', ))
    masks = tmp_path / 'masks'
    masks.mkdir()
    red = np.zeros((160, 160, 3), np.uint8)
    red[:80, :80, 2] = 255
    write_image(str(masks / 'chelsea.png'), red)
    out = str(tmp_path / 'out')
    assert main(['pseudo-gt', '--mse', mse, '--gan', gan, '--masks', str(masks), '--out', out]) == 1
    assert 'chelsea.png: colour mask' in capsys.readouterr().err
    assert main(['pseudo-gt', '--mse', mse, '--gan', gan, '--masks', str(masks), '--out', out, '--mask-channel', '0',
                 '--overwrite']) == 0
    assert summary_of(out)['items']['chelsea']['artifact_fraction'] == 0.25
    merged = read_image(osp.join(out, 'chelsea.png'))
    np.testing.assert_array_equal(merged[:80, :80], read_image(osp.join(mse, 'chelsea.png'))[:80, :80])


def test_pseudo_gt_names_non_binary_masks(tmp_path, capsys):
    mse, gan = make_sr_pairs(str(tmp_path), names=('chelsea', ))
    masks = tmp_path / 'masks'
    masks.mkdir()
    soft = np.zeros((160, 160), np.uint8)
    soft[:80] = 200
    write_image(str(masks / 'chelsea.png'), soft)
    out = str(tmp_path / 'out')
    assert main(['pseudo-gt', '--mse', mse, '--gan', gan, '--masks', str(masks), '--out', out]) == 0
    err = capsys.readouterr().err
    assert '1 mask(s) are not binary' in err and 'chelsea.png' in err
    record = summary_of(out)['items']['chelsea']
    assert record['mask_thresholded'] is True and record['artifact_fraction'] == 0.5


def test_evaluate_colour_gt_and_misaligned_sizes(tmp_path, capsys):
    pred, gt = tmp_path / 'pred', tmp_path / 'gt'
    box = np.zeros((500, 800), bool)
    box[100:300, 200:500] = True
    write_mask(str(pred / 'a.png'), box)
    write_image(str(gt / 'a.png'), np.dstack([box.astype(np.uint8) * 255] * 3))  # grey drawn in colour
    assert main(['evaluate', '--pred', str(pred), '--gt', str(gt)]) == 0
    assert '100.0000' in capsys.readouterr().out
    write_mask(str(gt / 'a.png'), np.pad(box, 5))  # the release's valid-mode border: accepted
    assert main(['evaluate', '--pred', str(pred), '--gt', str(gt)]) == 0
    write_mask(str(gt / 'a.png'), np.pad(box, 50))  # an 800x500 mask against a 900x600 GT: refused
    assert main(['evaluate', '--pred', str(pred), '--gt', str(gt)]) == 1
    assert 'a.png: size 900x600 does not match its partner (800x500)' in capsys.readouterr().err
    assert main(['compare', '--before', str(pred), '--after', str(pred), '--gt', str(gt)]) == 1


@pytest.mark.parametrize('ext', ['.jpg', '.png', '.webp', '.bmp'])
def test_truncated_images_are_named_errors(tmp_path, ext):
    img = skimage_photo_bgr('coffee')[:120, :160]
    ok, buf = cv2.imencode(ext, img)
    data = buf.tobytes()
    assert decode_image(data, 'whole').shape == img.shape
    for cut in (len(data) // 2, len(data) - 2):
        with pytest.raises(DesraInputError, match=f'x{ext}: (truncated|cannot decode)'):
            decode_image(data[:cut], f'x{ext}')
    path = str(tmp_path / f'cut{ext}')
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(DesraInputError, match=f'cut{ext}'):
        read_image(path)
    with pytest.raises(DesraInputError, match=f'cut{ext}'):
        load_mask(path)


def test_truncated_jpeg_in_detect_is_an_error_not_a_grey_mask(tmp_path, capsys):
    mse, gan = make_sr_pairs(str(tmp_path), names=('chelsea', 'coffee'))
    ok, buf = cv2.imencode('.jpg', read_image(osp.join(gan, 'coffee.png')), [cv2.IMWRITE_JPEG_QUALITY, 95])
    os.remove(osp.join(gan, 'coffee.png'))
    with open(osp.join(gan, 'coffee.jpg'), 'wb') as f:
        f.write(buf.tobytes()[:len(buf) // 2])
    out = str(tmp_path / 'out')
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', out]) == 1
    record = summary_of(out)['items']['coffee']
    assert record['status'] == 'error' and 'truncated JPEG' in record['message']
    assert not osp.exists(osp.join(out, 'coffee.png'))


# ------------------------------------------------------------------------------------------ settings
def test_nan_threshold_and_empty_folders_are_refused(tmp_path, capsys):
    mse, gan = make_sr_pairs(str(tmp_path), names=('chelsea', ))
    empty = tmp_path / 'empty'
    empty.mkdir()
    out = str(tmp_path / 'out')
    assert main(['detect', '--mse', mse, '--gan', gan, '--out', out, '--threshold', 'nan']) == 2
    assert '--threshold nan: must be a finite number' in capsys.readouterr().err
    assert main(['evaluate', '--sweep', '--mse', mse, '--gan', gan, '--gt', mse, '--thresholds', 'nan']) == 2
    assert main(['detect', '--mse', str(empty), '--gan', gan, '--out', out]) == 2
    assert '--mse holds no image' in capsys.readouterr().err
    assert main(['pseudo-gt', '--mse', mse, '--gan', gan, '--masks', str(empty), '--out', out]) == 2
    assert '--masks holds no image' in capsys.readouterr().err
    assert main(['sr', '--arch', 'RRDBNet', '--weights', 'w.pth', '--input', str(empty), '--out', out]) == 2
    assert not osp.exists(out)


def test_class_table_is_matched_by_class_names(tmp_path):
    from desra_basicsr.detection import ADE20K_CLASSES, DeSRADetector, Segmenter, load_class_weights

    class Reordered(Segmenter):

        def segment(self, img):
            return np.zeros(img.shape[:2], np.int64)

    names = tuple(reversed(ADE20K_CLASSES))
    segmenter = Reordered(names, 'a 150-class model with its own label order')
    with pytest.raises(DesraInputError, match="label 0 is 'wall' in the table and 'flag' in the model"):
        DeSRADetector(segmenter=segmenter, class_weights=load_class_weights())
    table = load_class_weights(None, names)
    assert table.weights[names.index('sky')] == 1.0 and table.names == names
    assert DeSRADetector(segmenter=segmenter).class_weights.names == names


def test_checkpoint_messages_are_short_and_never_suggest_unsafe_loading(tmp_path):
    from desra_basicsr.inference import build_generator
    empty, noise, listed = tmp_path / 'empty.pth', tmp_path / 'noise.pth', tmp_path / 'list.pth'
    empty.write_bytes(b'')
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    torch.save([torch.zeros(1)], str(listed))
    for path, message in ((empty, 'checkpoint file is empty'), (noise, 'corrupt, or not written by torch.save'),
                          (listed, 'holds a list, not a state dict')):
        with pytest.raises(DesraInputError) as err:
            read_checkpoint(str(path))
        assert message in str(err.value) and 'weights_only' not in str(err.value)
    net = build_generator('RRDBNet', {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 2,
                                      'num_grow_ch': 4})
    other = build_generator('RRDBNet', {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 3,
                                        'num_grow_ch': 4})
    torch.save({'params_ema': other.state_dict()}, str(tmp_path / 'g.pth'))
    with pytest.raises(DesraInputError) as err:
        load_weights(net, str(tmp_path / 'g.pth'))
    message = str(err.value)
    assert 'g.pth [params_ema] does not fit RRDBNet: 30 unexpected keys (body.2.' in message
    assert len(message) < 600 and message.count('body.2.') == 5


def test_device_of_each_rank():
    assert [cuda_index(None, r, 2) for r in range(4)] == [0, 1, 0, 1]
    assert [cuda_index(1, r, 4) for r in range(3)] == [1, 2, 3]
    with pytest.raises(DesraSettingsError, match='cuda:4: this machine has 2 GPU'):
        cuda_index(4, 0, 2)


# ------------------------------------------------------------------------------------------ exit codes
def _corrupt(folder, name='broken.png'):
    with open(osp.join(folder, name), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n broken')


@pytest.fixture()
def inputs(tmp_path):
    """Small valid inputs of every command."""
    mse, gan = make_sr_pairs(str(tmp_path / 'sr'), names=('chelsea', ))
    lr = tmp_path / 'lr'
    write_image(str(lr / 'chelsea.png'), read_image(osp.join(mse, 'chelsea.png'))[:40, :40])
    masks = tmp_path / 'masks'
    write_mask(str(masks / 'chelsea.png'), np.zeros((160, 160), bool))
    labelme = tmp_path / 'json'
    labelme.mkdir()
    (labelme / 'chelsea.json').write_text(json.dumps({'imageHeight': 4, 'imageWidth': 4, 'shapes': []}))
    weights = str(tmp_path / 'g.pth')
    from desra_basicsr.inference import build_generator
    torch.save({'params': build_generator('SRVGGNetCompact', VGG_KWARGS).state_dict()}, weights)
    return dict(mse=mse, gan=gan, lr=str(lr), masks=str(masks), json=str(labelme), weights=weights, root=tmp_path)


def _argv(command, f, out):
    arch = ['--arch', 'SRVGGNetCompact', '--arch-opt'] + [f'{k}={v}' for k, v in VGG_KWARGS.items()]
    return {
        'sr': ['sr', *arch, '--weights', f['weights'], '--input', f['lr'], '--out', out, '--device', 'cpu'],
        'detect': ['detect', '--mse', f['mse'], '--gan', f['gan'], '--out', out],
        'pseudo-gt': ['pseudo-gt', '--mse', f['mse'], '--gan', f['gan'], '--masks', f['masks'], '--out', out],
        'evaluate': ['evaluate', '--pred', f['masks'], '--gt', f['masks']],
        'compare': ['compare', '--before', f['masks'], '--after', f['masks']],
        'labelme2mask': ['labelme2mask', '--json', f['json'], '--out', out],
        'calibrate': ['calibrate', '--mse', f['mse'], '--gan', f['gan'], '--out', osp.join(out, 'w.yml')],
        'report': ['report', '--lr', f['lr'], '--mse', f['mse'], '--gan', f['gan'], '--masks', f['masks'], '--out',
                   out],
    }[command]


COMMANDS = ('sr', 'detect', 'pseudo-gt', 'evaluate', 'compare', 'labelme2mask', 'calibrate', 'report')


@pytest.mark.parametrize('command', COMMANDS)
def test_exit_codes_of_every_command(inputs, command, capsys):
    root = inputs['root']
    assert main(_argv(command, inputs, str(root / 'ok'))) == 0
    # 2: unusable arguments (a folder that does not exist), nothing written
    bad = dict(inputs, mse=str(root / 'nope'), lr=str(root / 'nope'), masks=str(root / 'nope'),
               json=str(root / 'nope'))
    assert main(_argv(command, bad, str(root / 'out2'))) == 2
    assert 'nope' in capsys.readouterr().err and not osp.exists(root / 'out2')
    # 1: an input file failed
    if command == 'labelme2mask':
        (root / 'json' / 'broken.json').write_text('{')
    elif command in ('evaluate', 'compare'):
        _corrupt(inputs['masks'], 'chelsea.png')
    elif command == 'sr':
        _corrupt(inputs['lr'])
    else:
        _corrupt(inputs['gan'], 'chelsea.png')
    assert main(_argv(command, inputs, str(root / 'out1'))) == 1
    assert capsys.readouterr().err.count('error: ') >= 1


# ------------------------------------------------------------------------------------------ startup
HELP_MODULES = textwrap.dedent("""
    import sys
    from desra_basicsr.commands import build_parser
    parser = build_parser()
    for argv in [['--help']] + [[name, '--help'] for name in parser._subparsers._group_actions[0].choices]:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pass
    heavy = {'numpy', 'torch', 'basicsr', 'cv2', 'mmseg', 'mmengine'} & set(sys.modules)
    assert not heavy, heavy
    import desra_basicsr.detection.detector
    assert 'torch' in sys.modules and 'basicsr' not in sys.modules
""")


def test_help_imports_neither_torch_nor_basicsr():
    proc = subprocess.run([sys.executable, '-c', HELP_MODULES], env=train_env(), cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


REGISTRATION = textwrap.dedent("""
    import desra_basicsr
    from desra_basicsr.data.artifact_mask_transform import ArtifactMaskTransform
    from basicsr.utils.registry import DATASET_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
    assert 'DeSRAFinetuneModel' in MODEL_REGISTRY
    assert DATASET_REGISTRY.get('PseudoGTPairedDataset').__name__ == 'PseudoGTPairedDataset'
    assert METRIC_REGISTRY.get('desra_artifact_ratio')
""")


def test_registration_before_basicsr_use_in_a_user_script():
    proc = subprocess.run([sys.executable, '-c', REGISTRATION], env=train_env(), cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_training_process_group_is_destroyed_only_when_the_job_made_it(monkeypatch):
    """Under torchrun the localiser and restorer trainings make the default group and destroy it at the end; a group
    the caller made is used and left as it is."""
    import socket

    import torch.distributed as dist

    from desra_basicsr.jobs.localizer_train import training_process_group
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(port))
    for name, value in (('RANK', '0'), ('WORLD_SIZE', '1'), ('LOCAL_RANK', '0')):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr('torch.cuda.is_available', lambda: False)  # gloo, as on the CPU machines of the tests
    with training_process_group(False):
        assert not dist.is_initialized()
    with training_process_group(True):
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
    assert not dist.is_initialized()
    dist.init_process_group('gloo')
    try:
        with training_process_group(True):
            assert dist.is_initialized()
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()
