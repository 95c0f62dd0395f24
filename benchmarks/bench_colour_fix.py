"""The colour fix from the LR input (``desra fuse --lr``, ``desra sr --colour-sigma``) on every generator of the
artifact zoo, at several Gaussian sigmas: the figures its default sigma was chosen on (docs/benchmarks/restore.md,
"Colour fix from the LR input").

For each split of ``--splits`` (never ``heldout`` to choose: pass it only to look) and each zoo generator with
outputs of that split, the mean PSNR against HR (BasicSR, RGB, 4-pixel border) of its outputs as they are and with
:func:`desra_basicsr.detection.colour_fix.colour_fix` at each sigma of ``--sigmas``. The ``finetune`` split's LR
images are only shrunk and JPEG-compressed; the ``train`` split's carry Real-ESRGAN's second-order degradation,
which is where a small sigma brings the LR's blur and noise back (``--every N`` takes every N-th image of a split).
Written to ``--out`` (JSON) and printed as a table.

Usage (after ``make zoo``)::

    .venv/bin/python -m benchmarks.bench_colour_fix --zoo results/zoo/manifest.json --splits finetune train \\
        --every 1 6 --out results/bench_colour_fix.json
"""
import argparse
import json
import os.path as osp
from typing import Dict, List, Optional

import numpy as np

from benchmarks.common import REPO, run_main, write_json
from desra_basicsr.detection.colour_fix import colour_fix
from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.evaluation.folders import format_table
from desra_basicsr.image_io import list_images, read_image, stem


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--zoo', default=osp.join(REPO, 'results', 'zoo', 'manifest.json'), help='zoo manifest')
    parser.add_argument('--splits', nargs='+', default=['finetune', 'train'], help='zoo splits to score')
    parser.add_argument(
        '--every',
        nargs='+',
        type=int,
        default=[1, 6],
        help='take every N-th image of each split (one N per split, or one for all)')
    parser.add_argument('--sigmas', nargs='+', type=float, default=[2, 4, 8, 16], help='colour-fix sigmas, SR px')
    parser.add_argument('--out', default=osp.join(REPO, 'results', 'bench_colour_fix.json'), help='JSON output')
    args = parser.parse_args(argv)
    if len(args.every) not in (1, len(args.splits)) or min(args.every) < 1:
        parser.error('--every: one positive N, or one per split')
    if min(args.sigmas) <= 0:
        parser.error('--sigmas: every sigma must be > 0')
    if not osp.isfile(args.zoo):
        parser.error(f'--zoo {args.zoo}: no such file (make zoo writes results/zoo/manifest.json)')
    return args


def split_psnr(split: Dict[str, str], hr_dir: str, every: int, sigmas: List[float]) -> Dict[str, float]:
    """Mean PSNR of one generator's outputs of one split, as they are (``'0'``) and fixed at each sigma."""
    from basicsr.metrics import calculate_psnr
    rows: Dict[str, List[float]] = {}
    for name in list_images(split['sr'])[::every]:
        sr = read_image(osp.join(split['sr'], name))
        hr = read_image(osp.join(hr_dir, f'{stem(name)}.png'))
        lr = read_image(osp.join(split['lr'], name))
        rows.setdefault('0', []).append(calculate_psnr(sr, hr, crop_border=4))
        for sigma in sigmas:
            rows.setdefault(f'{sigma:g}', []).append(calculate_psnr(colour_fix(sr, lr, sigma), hr, crop_border=4))
    return {key: float(np.mean(values)) for key, values in rows.items()} | {'images': len(rows['0'])}


def check_splits(manifest: dict, splits: List[str], zoo: str) -> None:
    """Refuse a split of ``--splits`` that no generator of the zoo has outputs of, before any work.

    Args:
        manifest (dict): The zoo manifest.
        splits (list[str]): ``--splits``.
        zoo (str): The manifest's path (named in the message).

    Raises:
        DesraSettingsError: Naming each such split and how to build it.
    """
    missing = [s for s in splits if not any(s in g.get('splits', {}) for g in manifest.get('generators', []))]
    if missing:
        raise DesraSettingsError(f'--splits: no generator of {zoo} has outputs of {", ".join(missing)}; build them '
                                 f'with `.venv/bin/python scripts/build_zoo.py --splits {" ".join(missing)}` (make '
                                 'zoo builds finetune and heldout) or leave them out')


def main(argv: Optional[List[str]] = None) -> dict:
    """Score every generator of every split (see the module docstring).

    Args:
        argv (list[str] | None): Command-line arguments.

    Returns:
        dict: Split -> generator -> mean PSNR as is (``'0'``) and at each sigma, and the image count.
    """
    args = parse_args(argv)
    with open(args.zoo) as f:
        manifest = json.load(f)
    check_splits(manifest, args.splits, args.zoo)
    every = dict(zip(args.splits, args.every * len(args.splits) if len(args.every) == 1 else args.every))
    report: Dict[str, Dict[str, dict]] = {}
    for split_name in args.splits:
        for generator in manifest['generators']:
            split = generator['splits'].get(split_name)
            if split is None:
                continue
            hr_dir = split.get('hr', manifest['hr'])
            report.setdefault(split_name, {})[generator['name']] = split_psnr(split, hr_dir, every[split_name],
                                                                              args.sigmas)
    write_json(args.out, {'sigmas': args.sigmas, 'every': every, 'psnr': report})
    keys = ['0'] + [f'{s:g}' for s in args.sigmas]
    for split_name, rows in report.items():
        print(f'\n{split_name} (one image in {every[split_name]}; PSNR as is, then with the fix at each sigma)')
        print(
            format_table(['generator', 'images', 'as is'] + [f'sigma {k}' for k in keys[1:]],
                         [[name, row['images']] + [f'{row[k]:.2f}' for k in keys] for name, row in rows.items()]))
    return report


if __name__ == '__main__':
    run_main(main, out_option='--out')
