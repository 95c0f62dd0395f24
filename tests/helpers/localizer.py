"""Artifact data and logs of the localiser tests."""
import os
import os.path as osp
import time

import cv2
import numpy as np

from helpers.photos import skimage_photo_bgr


def make_artifact_data(root: str, size: int = 64, names=('astronaut', 'chelsea', 'coffee', 'rocket')) -> dict:
    """Real-photo crops with a painted noise artifact and its 0/255 mask: ``root/{img,mask}/<name>.png``."""
    folders = {key: osp.join(root, key) for key in ('img', 'mask')}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        photo = skimage_photo_bgr(name)
        img = np.ascontiguousarray(photo[:size, :size]).copy()
        mask = np.zeros((size, size), np.uint8)
        top = left = (i * 7) % (size // 2)
        side = size // 2
        noise = rng.integers(-70, 71, (side, side, 1))
        img[top:top + side, left:left + side] = np.clip(img[top:top + side, left:left + side] + noise, 0, 255)
        mask[top:top + side, left:left + side] = 255
        cv2.imwrite(osp.join(folders['img'], f'{name}.png'), img)
        cv2.imwrite(osp.join(folders['mask'], f'{name}.png'), mask)
    return folders


def mmengine_log(out: str) -> str:
    """The text of the mmengine log that ``desra localizer train --out OUT`` wrote under ``OUT/work_dir``."""
    with open(next(osp.join(root, f) for root, _, files in os.walk(osp.join(out, 'work_dir')) for f in files
                   if f.endswith('.log'))) as f:
        return f.read()


def make_synthetic_folder(root: str, size: int = 64, names=('astronaut', 'chelsea', 'coffee'), failed=('rocket', ),
                          cls: str = 'noise') -> str:
    """A folder in the layout of ``desra zoo synth --out ROOT`` (:mod:`desra_basicsr.jobs.zoo_samples`): painted
    real-photo crops in ``img/``, their exact masks in ``mask/``, the clean crops in ``hr/`` as targets, and a
    ``summary.json`` of the command whose ``failed`` items have no files."""
    import json

    from desra_basicsr.jobs.zoo_samples import SYNTH_COMMAND
    data = make_artifact_data(root, size, names)
    hr = osp.join(root, 'hr')
    os.makedirs(hr, exist_ok=True)
    items = {}
    for name in names:
        cv2.imwrite(osp.join(hr, f'{name}.png'), np.ascontiguousarray(skimage_photo_bgr(name)[:size, :size]))
        items[name] = {'status': 'done', 'class': cls, 'target': osp.join(hr, f'{name}.png'),
                       'outputs': [f'img/{name}.png', f'mask/{name}.png']}
    items.update({name: {'status': 'error', 'message': f'{name}: failed'} for name in failed})
    summary = {'meta': {'command': SYNTH_COMMAND}, 'counts': {'done': len(names), 'error': len(failed)},
               'items': items}
    with open(osp.join(root, 'summary.json'), 'w') as f:
        json.dump(summary, f)
    assert data['img'] == osp.join(root, 'img') and data['mask'] == osp.join(root, 'mask')
    return root


def refused(args, out, capsys, *names) -> str:
    """Run ``desra ARGS``; assert exit 2 within a few seconds, one error line naming ``names``, no traceback, and no
    ``out`` (no work_dir, no mmengine log, no summary). Returns the error line."""
    from desra_basicsr.commands import main
    start = time.time()
    assert main(args) == 2
    elapsed = time.time() - start
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith('error: '), err
    for name in names:
        assert name in err, err
    assert 'Traceback' not in err and 'weights_only=False' not in err
    assert not osp.exists(out)
    assert elapsed < 15, f'refused after {elapsed:.1f} s'
    return err
