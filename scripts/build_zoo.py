"""Build the generator zoo (``make zoo``): GAN-SR models, their outputs and DeSRA-det masks on the demo corpus.

The zoo is data for the artifact localiser and the restorer: real GAN-SR artifacts of many generators, each with
its DeSRA-det mask (docs/zoo-generators.md). For every generator, on the LR images of each split of ``--splits``
(default: the corpus's fine-tune and held-out photos ``demo_data/{finetune,heldout}_lr``; ``train``: the training
pairs' LR patches ``datasets/demo/train/lq``, which the restorer option files ``options/restore/*.yml`` read), this
writes

* ``OUT/<generator>/<split>/sr/<photo>.png``: its outputs (``desra sr``);
* ``OUT/<generator>/<split>/masks/<photo>.png``: their DeSRA-det masks against the demo MSE-SR model's outputs
  (``desra detect``, semantics off), which are written once to ``OUT/mse_reference/<split>/sr``;
* ``OUT/manifest.json``: each generator's class and family name, option file and weights, and per split its
  folders, its HR folder and the mean DeSRA-det area (the splits of earlier runs are kept). A generator's folders
  are read as they are by :func:`desra_basicsr.jobs.zoo_samples.generator_samples` (``sr``, ``masks``, the split's
  ``hr``, the class).

The generators are the zoo's own (one BasicSR option file each in ``options/zoo/``, weights
``experiments/pretrained_models/zoo_<name>_x4.pth``), ``demo_gan`` and ``demo_gan_b``, and the released Real-ESRGAN
x4plus converted by ``make bench-real`` (``results/bench_real/RealESRGAN_x4plus_from_ncnn.pth``) when that file
exists; otherwise it is skipped with a message. A zoo generator whose weights are missing is first trained with
``desra_basicsr/train.py -opt options/zoo/<name>.yml --auto_resume`` on the corpus's training pairs
(``datasets/demo/train``, made by ``scripts/prepare_demo_data.py``), and its last checkpoint is copied to its
weights file. Every step resumes: weights that exist are not retrained, finished outputs and masks are kept. A run
left in ``experiments/<name>/`` is resumed only with the training options it was started with; after an edit of
the option file, train.py stops with a message naming that folder: remove or rename it to train anew.

Usage (from the repository root)::

    .venv/bin/python scripts/build_zoo.py                      # everything, into results/zoo
    .venv/bin/python scripts/build_zoo.py --only rrdb_small --only demo_gan
    .venv/bin/python scripts/build_zoo.py --splits train --only demo_gan   # the demo restorer's training data

Paths are relative to ``--root`` (default: the repository). Exit codes: 0 done; 1 a training run or an image
failed; 2 unusable arguments (an unknown ``--only`` name, a missing folder or file).
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import yaml
from tqdm import tqdm

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.image_io import list_images
from desra_basicsr.jobs import detect, sr
from desra_basicsr.jobs.core import JobResult
from desra_basicsr.utils import atomic_write_path

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN_SCRIPT = osp.join(REPO, 'desra_basicsr', 'train.py')
#: Folders and files under ``--root``.
ZOO_OPTIONS = osp.join('options', 'zoo')
WEIGHTS_DIR = osp.join('experiments', 'pretrained_models')
MSE_OPT = osp.join('options', 'demo_train_mse.yml')
MSE_WEIGHTS = osp.join(WEIGHTS_DIR, 'demo_mse_x4.pth')
HR_DIR = osp.join('datasets', 'demo', 'hr')
REALESRGAN_OPT = osp.join('options', 'finetune_realesrgan_desra.yml')
REALESRGAN_WEIGHTS = osp.join('results', 'bench_real', 'RealESRGAN_x4plus_from_ncnn.pth')
#: The corpus's splits the zoo can cover: their LR and HR folders (same file stems).
SPLITS = {
    'finetune': (osp.join('demo_data', 'finetune_lr'), HR_DIR),
    'heldout': (osp.join('demo_data', 'heldout_lr'), HR_DIR),
    'train': (osp.join('datasets', 'demo', 'train', 'lq'), osp.join('datasets', 'demo', 'train', 'gt')),
}
#: The splits built unless ``--splits`` says otherwise (the localiser's and the benchmarks').
DEFAULT_SPLITS = ('finetune', 'heldout')
#: Folder (under ``--out``) of the MSE-SR reference outputs; not a generator.
MSE_REFERENCE = 'mse_reference'
MANIFEST = 'manifest.json'


@dataclass(frozen=True)
class Generator:
    """One generator of the zoo.

    Attributes:
        name (str): Its name, also its class name in the zoo's samples.
        family (str): Its architecture (``network_g.type`` of its option file).
        opt (str): Its BasicSR option file.
        weights (str): Its generator weights.
        trained_here (bool): Whether the zoo trains it when the weights are missing (the ``options/zoo`` ones).
    """
    name: str
    family: str
    opt: str
    weights: str
    trained_here: bool = False


def network_type(opt: str) -> str:
    """``network_g.type`` of an option file.

    Raises:
        DesraSettingsError: If the file is missing, not YAML or names no generator.
    """
    try:
        with open(opt, 'r') as f:
            network_g = (yaml.safe_load(f) or {}).get('network_g') or {}
    except (OSError, yaml.YAMLError, AttributeError) as error:
        raise DesraSettingsError(f'{opt}: not a readable BasicSR option file ({error}); check the file') from error
    if 'type' not in network_g:
        raise DesraSettingsError(f'{opt}: no network_g.type; a zoo generator needs a BasicSR generator')
    return network_g['type']


def list_generators(root: str, realesrgan_weights: str) -> List[Generator]:
    """The zoo's generators under ``root``: ``options/zoo/*.yml``, the demo's two GAN-SR models, Real-ESRGAN x4plus.

    Args:
        root (str): The folder the relative paths start from.
        realesrgan_weights (str): The converted Real-ESRGAN x4plus; left out, with a message, when missing.

    Returns:
        list[Generator]: In build order.
    """
    weights_dir = osp.join(root, WEIGHTS_DIR)
    generators = [
        Generator(stem, network_type(opt), opt, osp.join(weights_dir, f'zoo_{stem}_x4.pth'), trained_here=True)
        for opt in sorted(glob.glob(osp.join(root, ZOO_OPTIONS, '*.yml')))
        for stem in [osp.splitext(osp.basename(opt))[0]]
    ]
    for name, opt in (('demo_gan', 'demo_train_gan.yml'), ('demo_gan_b', 'demo_train_gan_b.yml')):
        opt = osp.join(root, 'options', opt)
        generators.append(Generator(name, network_type(opt), opt, osp.join(weights_dir, f'{name}_x4.pth')))
    if osp.isfile(realesrgan_weights):
        opt = osp.join(root, REALESRGAN_OPT)
        generators.append(Generator('realesrgan_x4plus', network_type(opt), opt, realesrgan_weights))
    else:
        print(f'build_zoo: skipping realesrgan_x4plus: {realesrgan_weights} not found (`make bench-real` converts '
              'the released model into it; or give --realesrgan-weights)', flush=True)
    return generators


def select(generators: List[Generator], only: Optional[List[str]]) -> List[Generator]:
    """The generators named by ``--only`` (all without it).

    Raises:
        DesraSettingsError: If a name is not a generator of the zoo.
    """
    if not only:
        return generators
    names = [g.name for g in generators]
    unknown = [name for name in only if name not in names]
    if unknown:
        raise DesraSettingsError(f'--only {unknown[0]}: no such generator; choose from {", ".join(names)}')
    return [g for g in generators if g.name in only]


def train(generator: Generator, root: str) -> float:
    """Train a zoo generator with ``desra_basicsr/train.py`` (resuming) and copy its last weights into place.

    Args:
        generator (Generator): A generator with ``trained_here``.
        root (str): The working folder of the run (its ``experiments/`` and data paths).

    Returns:
        float: Seconds the training took.

    Raises:
        DesraInputError: If the run fails (its exit code and the tail of its output are in the message).
    """
    with open(generator.opt, 'r') as f:
        run_name = yaml.safe_load(f)['name']
    print(f'build_zoo: training {generator.name} ({osp.relpath(generator.opt, root)})', flush=True)
    start = time.perf_counter()
    # The weights are missing, but experiments/<name> may hold a run: resume it (--auto_resume), never archive or
    # delete it. An interrupted run is continued, and a finished one re-saves the weights it trained; a run started
    # with other training options is refused by train.py (it compares the option file with the copy saved in
    # experiments/<name>/), whose one-line error, naming experiments/<name> to remove, is passed on. Archiving it
    # here instead would throw away the training of an interrupted run without asking.
    proc = subprocess.run([sys.executable, TRAIN_SCRIPT, '-opt', generator.opt, '--auto_resume'], cwd=root,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        lines = proc.stdout.strip().splitlines()
        errors = [line[len('error: '):] for line in lines if line.startswith('error: ')]
        if errors:  # train.py's own message names the file and what to do
            raise DesraInputError(f'training {generator.name} ({generator.opt}) stopped: {errors[-1]}')
        last = lines[-1:] or ['no output']
        raise DesraInputError(f'{generator.opt}: training exited with {proc.returncode} ({last[0]}); fix it and run '
                              'build_zoo again (it resumes)')
    latest = osp.join(root, 'experiments', run_name, 'models', 'net_g_latest.pth')
    os.makedirs(osp.dirname(generator.weights), exist_ok=True)
    with atomic_write_path(generator.weights) as tmp:
        shutil.copyfile(latest, tmp)
    print(f'build_zoo: trained {generator.name} in {seconds:.0f} s -> {generator.weights}', flush=True)
    return seconds


def checked(result: JobResult, what: str) -> JobResult:
    """A job's result, or an error naming the step when an image failed."""
    result.require_all_done(what)
    return result


def mean_area(result: JobResult) -> float:
    """Mean DeSRA-det artifact area (percent of the pixels) over a detect job's images."""
    return 100 * float(np.mean([r.artifact_fraction for r in detect.DetectRecord.done(result).values()]))


def previous_manifest(path: str) -> dict:
    """An earlier manifest (a run with ``--only`` or ``--splits`` keeps the other generators and splits); {} if none."""
    if not osp.isfile(path):
        return {}
    with open(path, 'r') as f:
        return json.load(f)


def build(args: argparse.Namespace) -> dict:
    """Train what is missing, then outputs and masks of every generator on every split; returns the manifest."""
    root = osp.abspath(args.root)
    out = osp.abspath(osp.join(root, args.out))
    splits = {split: tuple(osp.join(root, folder) for folder in SPLITS[split]) for split in args.splits}
    for split, (lr, _) in splits.items():
        if not osp.isdir(lr) or not list_images(lr):
            raise DesraSettingsError(f'{lr}: the {split} LR photos are missing; run scripts/prepare_demo_data.py')
    mse_opt, mse_weights = osp.join(root, MSE_OPT), osp.join(root, MSE_WEIGHTS)
    if not osp.isfile(mse_weights):
        raise DesraSettingsError(f'{mse_weights}: the demo MSE-SR model (the twin of the masks) is missing; train it '
                                 f'with {MSE_OPT} (docs/demo.md)')
    every = list_generators(root, osp.join(root, args.realesrgan_weights))
    generators = select(every, args.only)
    hr = osp.join(root, HR_DIR)
    previous = previous_manifest(osp.join(out, MANIFEST))
    manifest = {'mse_reference': {**previous.get('mse_reference', {}), 'opt': mse_opt, 'weights': mse_weights},
                'hr': hr if osp.isdir(hr) else None}
    trained = {g.name for g in generators if g.trained_here and not osp.isfile(g.weights)}
    for generator in generators:
        if generator.name in trained:
            train(generator, root)
    bar = tqdm(total=len(generators) * len(splits), desc='zoo', unit='set')
    for split, (lr, _) in splits.items():
        mse = osp.join(out, MSE_REFERENCE, split, 'sr')
        checked(sr.run(sr.SRSettings(input=lr, out=mse, opt=mse_opt, weights=mse_weights, device=args.device,
                                     progress=False)), f'MSE-SR on {split}')
        manifest['mse_reference'][split] = mse
    entries = {entry['name']: entry for entry in previous.get('generators', [])}
    for generator in generators:
        redo = generator.name in trained  # new weights: outputs and masks of the old ones are replaced
        kept = {} if redo else entries.get(generator.name, {}).get('splits', {})
        entry = {'name': generator.name, 'class': generator.name, 'family': generator.family, 'opt': generator.opt,
                 'weights': generator.weights, 'splits': dict(kept)}
        for split, (lr, split_hr) in splits.items():
            folder = osp.join(out, generator.name, split)
            bar.set_postfix_str(f'{generator.name} {split}')
            checked(sr.run(sr.SRSettings(input=lr, out=osp.join(folder, 'sr'), opt=generator.opt,
                                         weights=generator.weights, device=args.device, overwrite=redo,
                                         progress=False)),
                    f'{generator.name} SR on {split}')
            masks = checked(detect.run(detect.DetectSettings(
                mse=manifest['mse_reference'][split], gan=osp.join(folder, 'sr'), out=osp.join(folder, 'masks'),
                device=args.device, overwrite=redo, progress=False)), f'{generator.name} DeSRA-det on {split}')
            entry['splits'][split] = {'lr': lr, 'hr': split_hr, 'sr': osp.join(folder, 'sr'),
                                      'masks': osp.join(folder, 'masks'), 'images': len(masks.items),
                                      'mean_area_percent': round(mean_area(masks), 3)}
            bar.update()
        entries[generator.name] = entry
    bar.close()
    manifest['generators'] = [entries[g.name] for g in every if g.name in entries]
    os.makedirs(out, exist_ok=True)
    with atomic_write_path(osp.join(out, MANIFEST)) as tmp, open(tmp, 'w') as f:
        json.dump(manifest, f, indent=2)
    return manifest


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--root', default=REPO, help='folder the relative paths start from (default: the repository)')
    parser.add_argument('--out', default=osp.join('results', 'zoo'), help='output folder (default results/zoo)')
    parser.add_argument('--only', action='append', metavar='NAME', help='build only this generator (repeatable)')
    parser.add_argument('--splits', nargs='+', choices=tuple(SPLITS), default=list(DEFAULT_SPLITS),
                        help=f'the corpus splits to build (default: {" ".join(DEFAULT_SPLITS)})')
    parser.add_argument('--realesrgan-weights', default=REALESRGAN_WEIGHTS,
                        help=f'the converted Real-ESRGAN x4plus (default {REALESRGAN_WEIGHTS}, from make bench-real)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default cpu)')
    args = parser.parse_args(argv)
    try:
        manifest = build(args)
    except DesraInputError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2 if isinstance(error, DesraSettingsError) else 1
    for split in args.splits:
        rows: Dict[str, float] = {g['name']: g['splits'][split]['mean_area_percent'] for g in manifest['generators']
                                  if split in g['splits']}
        print(f'build_zoo: mean DeSRA-det area on the {split} set: ' +
              ', '.join(f'{name} {area:.2f} %' for name, area in rows.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
