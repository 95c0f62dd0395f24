"""``benchmarks/bench_colour_fix.py`` on a tiny zoo: a generator with a colour cast gains, one without does not."""
import json

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from benchmarks import bench_colour_fix as bench
from desra_basicsr.errors import DesraSettingsError

PHOTOS = ('astronaut', 'chelsea', 'coffee')


def _zoo(root):
    """HR photos, their x4 LR images, and two generators' outputs: the photo with a red cast, and the photo itself."""
    hr = {p: cv2.resize(getattr(skdata, p)()[..., ::-1], (128, 128), interpolation=cv2.INTER_AREA) for p in PHOTOS}
    folders = {}
    for name in ('hr', 'lr', 'cast', 'exact'):
        (root / name).mkdir()
        folders[name] = str(root / name)
    for p, img in hr.items():
        cv2.imwrite(str(root / 'hr' / f'{p}.png'), img)
        cv2.imwrite(str(root / 'lr' / f'{p}.png'), cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA))
        cast = img.astype(np.int16) + np.array([0, 0, 20], np.int16)
        cv2.imwrite(str(root / 'cast' / f'{p}.png'), np.clip(cast, 0, 255).astype(np.uint8))
        cv2.imwrite(str(root / 'exact' / f'{p}.png'), img)
    generators = [{
        'name': g,
        'splits': {
            'finetune': {
                'sr': folders[g],
                'lr': folders['lr']
            },
            'train': {
                'sr': folders[g],
                'lr': folders['lr'],
                'hr': folders['hr']
            }
        }
    } for g in ('cast', 'exact')]
    path = root / 'manifest.json'
    path.write_text(json.dumps({'hr': folders['hr'], 'generators': generators}))
    return str(path)


def test_the_colour_fix_benchmark_scores_every_generator_and_sigma(tmp_path):
    zoo, out = _zoo(tmp_path), tmp_path / 'out.json'
    report = bench.main(
        ['--zoo', zoo, '--splits', 'finetune', 'train', '--every', '1', '2', '--sigmas', '4', '8', '--out',
         str(out)])
    assert json.loads(out.read_text())['psnr'] == report
    for split, images in (('finetune', 3), ('train', 2)):
        cast, exact = report[split]['cast'], report[split]['exact']
        assert cast['images'] == exact['images'] == images
        assert cast['8'] > cast['0'] + 5 and cast['4'] > cast['0'] + 5  # the +20 red cast is gone
        assert exact['0'] == float('inf') and np.isfinite(exact['8'])  # the photo itself only loses by the fix


@pytest.mark.parametrize('args',
                         [['--every', '0'], ['--sigmas', '0'], ['--every', '1', '2', '3'], ['--zoo', 'absent.json']])
def test_bad_arguments_are_refused(tmp_path, args):
    with pytest.raises(SystemExit):
        bench.parse_args(['--zoo', _zoo(tmp_path)] + args)
    assert not (tmp_path / 'out.json').exists()


def test_a_split_no_generator_has_is_refused_by_name_before_any_work(tmp_path):
    out = tmp_path / 'out.json'
    with pytest.raises(DesraSettingsError, match=r'--splits: no generator of .*manifest.json has outputs of heldout, '
                                                 r'val; build them with .*build_zoo.py --splits heldout val'):
        bench.main(['--zoo', _zoo(tmp_path), '--splits', 'finetune', 'heldout', 'val', '--every', '1', '--out',
                    str(out)])
    assert not out.exists()
