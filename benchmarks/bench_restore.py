"""The DiffGAR restorer against the other ways of removing artifacts, on photos it never saw
(docs/benchmarks/restore.md).

Three sets of images with artifacts, all from the corpus's photos of one split (``--split``: ``heldout`` for the
report, ``finetune`` to choose settings; the restorers trained on the ``train`` split only):

* ``seen``: the outputs of the generator the restorer trained on (``--seen``, default ``demo_gan``) with their
  DeSRA-det masks, from the artifact zoo (``make zoo`` writes ``results/zoo/manifest.json``);
* ``unseen``: the outputs of a zoo generator the restorer never saw (``--unseen``, default ``compact_unetd``);
* ``synthetic``: ``desra zoo synth`` artifacts painted on the split's HR photos (``--synthetic-per-class`` images of
  each class), with their exact masks.

Every restorer run goes through ``desra restore`` with the set's masks (``--masks``: only the inside is restored, every
pixel outside is the input's): the diffusion restorer blind over ``--seeds`` at ``--steps`` (30) DDIM steps; on
``seen`` also non-blind (``--class`` of the generator) with guidance 1, 2 and 3, and blind with 10 and 50 steps
(``--step-sweep``, seed 0); the one-pass regression restorer (``--regression``) blind, and non-blind on ``seen``.
With ``--whole``, the diffusion restorer also restores the whole images of every set (no masks, every seed), which is
where the detail outside the masks can be lost; with ``--outside A ...`` also the whole-image restoration applied at
strength ``A`` outside the masks (``desra restore --masks --outside A``; composed from the ``--whole`` outputs with
the masks, which is what that command writes: it draws the same noise), and with ``--passes N ...`` also those
outputs restored again inside the masks until ``N`` passes (``desra restore --masks --outside A --passes N``: ``desra
restore --masks`` on the ``--outside`` outputs, the same seed). Compared with the input, the MSE-SR
output (``mse_reference`` of the zoo), and on ``seen`` the DeSRA fine-tune of the same generator (``--finetune-dir``:
its outputs of the split, e.g. ``desra demo``'s) and the fusion of every zoo generator's outputs with DeSRA scores
and the MSE-SR fallback (``desra fuse``; with ``--localizer-config``/``--localizer-checkpoint`` also the
localiser-driven fusion, no MSE-SR), beside each fusion candidate alone (``candidate_NAME``, every zoo generator but
``--seen``, whose outputs are the ``input`` row). Each fusion runs twice: as it is, and with the colour fix from the
split's LR inputs (``desra fuse --lr``, rows ``..._colour``), beside every zoo generator alone with that fix
(``candidate_NAME_colour``). ``--finetune-dir`` must hold the split's images (the same file stems as ``--seen``'s
outputs of the split); ``--demo DIR`` (a ``desra demo`` output folder) gives it for either split: its fine-tuned
model's outputs of the held-out set (``DIR/rounds/001/heldout/sr``) or of the fine-tune set
(``DIR/rounds/001/pool_after/sr``). The synthetic set lives under ``WORK/synthetic/<split>``.

Figures per set and method, means over the images: PSNR and SSIM against HR (BasicSR, RGB, 4-pixel border), PSNR
inside the masks, BasicSR's NIQE (Y channel, lower is better), DeSRA-det's artifact area (percent; against the
MSE-SR output, on ``synthetic`` against the clean photo) and its change from the input, the detail kept outside the
masks (mean local standard deviation over the input's, :mod:`desra_basicsr.evaluation.detail`) and seconds per
image of the restorers. Targets, printed as met or missed per seed: on ``seen``, area down at least 70 %, PSNR at
least 0.3 dB above the input, detail outside the masks at least 0.85; on ``unseen``, area down at least 50 % and PSNR
not below the input. Written to ``WORK/results.json`` (``--sets``: to ``WORK/results_SETS.json``, so that runs of
different sets can share a work folder); every stage is a resumable ``desra`` job (run the same command
again to continue).

Usage (``make bench-restore``)::

    .venv/bin/python -m benchmarks.bench_restore --work results/bench_restore --seeds 0 1 2 --demo results/demo
"""
import argparse
import json
import os
import os.path as osp
import shutil
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

import numpy as np

from benchmarks.common import REPO, check_counts, check_paths, checked, colour_fixed, run_main, write_json
from desra_basicsr.demo import PRETRAINED
from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.evaluation.detail import detail_outside
from desra_basicsr.evaluation.folders import format_table
from desra_basicsr.image_io import list_images, read_image, read_mask, stem, write_image
from desra_basicsr.jobs import detect, fuse, restore, zoo_synth
from desra_basicsr.restore.masking import blend_weights, composite
from desra_basicsr.settings import default_of

#: The fine-tuned model's outputs of each split in a ``desra demo`` output folder.
DEMO_FINETUNE_OUTPUTS = {'heldout': osp.join('rounds', '001', 'heldout', 'sr'),
                         'finetune': osp.join('rounds', '001', 'pool_after', 'sr')}
#: Per set: (least percent of DeSRA-det area removed, least PSNR gain in dB over the input, least detail kept).
TARGETS = {'seen': (70.0, 0.3, 0.85), 'unseen': (50.0, 0.0, None)}


@dataclass
class ImageSet:
    """Images with artifacts, their masks and clean photos, all with the same file stems.

    Attributes:
        name (str): ``seen``, ``unseen`` or ``synthetic``.
        images (str): Folder of images with artifacts.
        masks (str): Folder of their artifact masks.
        hr (str): Folder of the clean photos.
        reference (str): What DeSRA-det compares with (the MSE-SR outputs, or the clean photos).
        cls (str | None): The restorer class of the set's artifacts (non-blind runs), None: none.
        methods (dict): ``{label: folder}`` of the outputs to score.
        seconds (dict): ``{label: seconds per image}`` of the restorer runs.
    """
    name: str
    images: str
    masks: str
    hr: str
    reference: str
    cls: Optional[str] = None
    methods: Dict[str, str] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)


def parse_args(argv: List[str] = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', required=True, help='work folder (outputs, masks, results.json)')
    parser.add_argument('--zoo', default=osp.join(REPO, 'results', 'zoo', 'manifest.json'), help='zoo manifest')
    parser.add_argument('--split', choices=('heldout', 'finetune'), default='heldout')
    parser.add_argument('--restorer', default=restore.DEMO_RESTORER, help='diffusion restorer')
    parser.add_argument('--regression', default=osp.join(PRETRAINED, 'restore_demo_regression.pth'),
                        help='one-pass regression restorer (empty: none)')
    parser.add_argument('--seen', default='demo_gan', help='zoo generator the restorer trained on')
    parser.add_argument('--unseen', default='compact_unetd', help='zoo generator the restorer never saw')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument('--guidance', nargs='*', type=float, default=[1.0, 2.0, 3.0])
    parser.add_argument('--steps', type=int, default=30, help='DDIM steps of the runs over seeds and guidance')
    parser.add_argument('--step-sweep', nargs='*', type=int, default=[10, 50], help='other step counts (seed 0)')
    parser.add_argument('--synthetic-per-class', type=int, default=3, help='synthetic images of each class')
    parser.add_argument('--finetune-dir', help='outputs of the DeSRA fine-tune of --seen on the split')
    parser.add_argument('--demo', help='a desra demo output folder: --finetune-dir is its fine-tuned model\'s outputs '
                        'of the split, unless given')
    parser.add_argument('--localizer-config', help='localizer_config.py for the localiser-driven fusion')
    parser.add_argument('--localizer-checkpoint', help='the matching localizer.pth')
    parser.add_argument('--whole', action='store_true', help='also restore the whole images (every seed)')
    parser.add_argument('--outside', nargs='*', type=float, default=[], metavar='A',
                        help='with --whole: also the whole-image restoration at strength A outside the masks')
    parser.add_argument('--passes', nargs='*', type=int, default=[], metavar='N',
                        help='with --outside: also those restorations restored inside the masks until N passes')
    parser.add_argument('--sets', nargs='+', choices=('seen', 'unseen', 'synthetic'),
                        default=['seen', 'unseen', 'synthetic'], help='the sets to run')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    if args.outside and not args.whole:
        parser.error('--outside: composed from the whole-image restorations; give --whole too')
    if any(not 0 <= a <= 1 for a in args.outside):
        parser.error(f'--outside: strengths must be in [0, 1], got {args.outside}')
    if args.passes and not args.outside:
        parser.error('--passes: the further passes start from the --outside restorations; give --outside too')
    if any(not 2 <= n <= restore.MAX_PASSES for n in args.passes):
        parser.error(f'--passes: counts must be in [2, {restore.MAX_PASSES}] (1 is the --outside row), got '
                     f'{args.passes}')
    if bool(args.localizer_config) != bool(args.localizer_checkpoint):
        parser.error('--localizer-config, --localizer-checkpoint: give both or neither')
    if args.demo and not args.finetune_dir:
        args.finetune_dir = osp.join(args.demo, DEMO_FINETUNE_OUTPUTS[args.split])
    return args


def check_args(args: argparse.Namespace) -> None:
    """Refuse unusable counts, missing files and folders before any work.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Raises:
        DesraSettingsError: For a count below 1, a missing file or folder, or a ``--finetune-dir`` that does not
            hold the split's images.
    """
    check_counts(args, '--steps', '--synthetic-per-class')
    check_paths([('--localizer-config', args.localizer_config), ('--localizer-checkpoint', args.localizer_checkpoint)])
    check_paths([('--demo', args.demo)], kind='folder')
    if args.finetune_dir and not osp.isdir(args.finetune_dir):
        raise DesraSettingsError(f'--finetune-dir {args.finetune_dir}: no such folder (the DeSRA fine-tune\'s outputs '
                                 f'of the {args.split} split; with --demo, run desra demo first)')


def check_finetune_dir(args: argparse.Namespace, split_images: str) -> None:
    """Refuse a ``--finetune-dir`` whose images are not those of the split.

    Args:
        args (argparse.Namespace): Parsed arguments (``finetune_dir``, ``split``).
        split_images (str): ``--seen``'s outputs of the split, whose file stems the folder must hold.

    Raises:
        DesraSettingsError: Naming the folder, the split and the stems that differ.
    """
    if not args.finetune_dir:
        return
    have = {stem(name) for name in list_images(args.finetune_dir)}
    want = {stem(name) for name in list_images(split_images)}
    if have != want:
        missing, extra = sorted(want - have), sorted(have - want)
        listing = lambda names: ', '.join(names[:5]) + (', ...' if len(names) > 5 else '')  # noqa: E731
        differences = '; '.join(part for part in (f'missing {listing(missing)}' if missing else '',
                                                  f'not of the split {listing(extra)}' if extra else '') if part)
        raise DesraSettingsError(f'{args.finetune_dir}: the DeSRA fine-tune\'s outputs must be the {args.split} '
                                 f'split\'s {len(want)} images ({differences}); give its outputs of --split '
                                 f'{args.split}')


def zoo_sets(args: argparse.Namespace, work: str) -> List[ImageSet]:
    """The ``seen`` and ``unseen`` sets of the zoo manifest, with the methods that need no restorer."""
    with open(args.zoo, encoding='utf-8') as f:
        manifest = json.load(f)
    generators = {g['name']: g for g in manifest['generators']}
    for name in (args.seen, args.unseen):
        if name not in generators:
            raise SystemExit(f'{args.zoo}: no generator {name} (choose from {", ".join(sorted(generators))})')
    if 'seen' in args.sets:
        check_finetune_dir(args, generators[args.seen]['splits'][args.split]['sr'])
    mse = manifest['mse_reference'][args.split]
    sets = []
    for label, name in (('seen', args.seen), ('unseen', args.unseen)):
        split = generators[name]['splits'][args.split]
        image_set = ImageSet(label, split['sr'], split['masks'], manifest['hr'], mse,
                             cls=name if label == 'seen' else None)
        image_set.methods.update(input=split['sr'], mse=mse)
        sets.append(image_set)
    seen = sets[0]
    if 'seen' not in args.sets:
        return sets
    if args.finetune_dir:
        seen.methods['desra_finetune'] = args.finetune_dir
    # Fusion of every generator with detected artifacts, best fine-tune PSNR first (fuse prefers the first listed
    # among equally clean candidates; the order is chosen on the fine-tune split, never on the held-out one).
    order = sorted(generators.values(), key=lambda g: -quality(g['splits']['finetune']['sr'], manifest['hr'])['psnr'])
    inputs = [g['splits'][args.split]['sr'] for g in order]
    seen.methods.update(
        {f'candidate_{g["name"]}': g['splits'][args.split]['sr']
         for g in order if g['name'] != args.seen})
    # Each fusion plain and with the colour fix from the LR inputs (``desra fuse --lr``), and every generator alone
    # with that fix, so that what the fix does and what the fusion does can be told apart.
    lr = generators[args.seen]['splits'][args.split]['lr']
    for suffix, colour in (('', {}), ('_colour', dict(lr=lr))):
        out = osp.join(work, 'fused' + suffix)
        checked(fuse.run(fuse.FuseSettings(inputs=inputs, mse=mse, out=out, progress=False, **colour)))
        seen.methods['fusion' + suffix] = out
        if args.localizer_config and args.localizer_checkpoint:
            out = osp.join(work, 'fused_localizer' + suffix)
            checked(fuse.run(fuse.FuseSettings(inputs=inputs, out=out, localizer_config=args.localizer_config,
                                               localizer_checkpoint=args.localizer_checkpoint, device=args.device,
                                               progress=False, **colour)))
            seen.methods['fusion_localizer' + suffix] = out
    sigma = default_of(fuse.FuseSettings, 'colour_sigma')
    seen.methods.update({
        f'candidate_{g["name"]}_colour': colour_fixed(g['splits'][args.split]['sr'], lr, sigma,
                                                      osp.join(work, 'colour', g['name']))
        for g in order
    })
    return sets


def keep_only(folder: str, names: Set[str]) -> None:
    """Remove every file of ``folder`` whose name is not in ``names`` (what an earlier, larger pick left).

    Args:
        folder (str): The folder.
        names (set[str]): The file names to keep.
    """
    for name in os.listdir(folder):
        if name not in names and osp.isfile(osp.join(folder, name)):
            os.remove(osp.join(folder, name))


def synthetic_set(args: argparse.Namespace, work: str, manifest_hr: str, names: List[str]) -> ImageSet:
    """``desra zoo synth`` on the split's HR photos, ``--synthetic-per-class`` images of each class, under
    ``WORK/synthetic/<split>`` (each split its own folder; a folder holds exactly this run's pick)."""
    root = osp.join(work, 'synthetic', args.split)
    hr_split = osp.join(root, 'hr_split')
    os.makedirs(hr_split, exist_ok=True)
    keep_only(hr_split, {f'{name}.png' for name in names})
    for name in names:
        if not osp.exists(osp.join(hr_split, f'{name}.png')):
            shutil.copyfile(osp.join(manifest_hr, f'{name}.png'), osp.join(hr_split, f'{name}.png'))
    synth = osp.join(root, 'zoo')
    result = checked(zoo_synth.run(zoo_synth.ZooSynthSettings(hr=hr_split, out=synth, progress=False)))
    picked: Dict[str, List[str]] = {}
    for item, record in sorted(result.items.items()):
        if len(picked.setdefault(record['class'], [])) < args.synthetic_per_class:
            picked[record['class']].append(item)
    files = {f'{item}.png' for items in picked.values() for item in items}
    folders = {part: osp.join(root, part) for part in ('img', 'mask', 'hr')}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
        keep_only(folder, files)
    for items in picked.values():
        for item in items:
            for part in ('img', 'mask'):
                shutil.copyfile(osp.join(synth, part, f'{item}.png'), osp.join(folders[part], f'{item}.png'))
            shutil.copyfile(result.items[item]['target'], osp.join(folders['hr'], f'{item}.png'))
    image_set = ImageSet('synthetic', folders['img'], folders['mask'], folders['hr'], folders['hr'])
    image_set.methods['input'] = folders['img']
    return image_set


def restore_runs(args: argparse.Namespace, image_set: ImageSet, work: str) -> None:
    """Run the restorers on a set (see the module docstring) and add their outputs to its methods."""
    diffusion = dict(checkpoint=args.restorer, steps=args.steps)
    runs = {f'diffusion_blind_seed{seed}': dict(diffusion, seed=seed) for seed in args.seeds}
    if image_set.name == 'seen':
        runs.update({f'diffusion_class_g{g:g}': dict(diffusion, cls=image_set.cls, guidance=g) for g in args.guidance})
        runs.update({f'diffusion_blind_{n}steps': dict(diffusion, steps=n) for n in args.step_sweep})
    if args.whole:
        runs.update({f'diffusion_blind_whole_seed{seed}': dict(diffusion, masks=None, seed=seed)
                     for seed in args.seeds})
    if args.regression:
        regression = dict(checkpoint=args.regression, steps=1)  # one pass whatever the steps
        runs['regression_blind'] = regression
        if image_set.name == 'seen':
            runs['regression_class'] = dict(regression, cls=image_set.cls)

    def restored(label: str, options: Dict[str, Any]) -> float:
        """Run one restorer into ``restored/SET/LABEL``; its mean seconds per image."""
        out = osp.join(work, 'restored', image_set.name, label)
        settings = dict(input=image_set.images, out=out, masks=image_set.masks, device=args.device, progress=False)
        result = checked(restore.run(restore.RestoreSettings(**{**settings, **options})))
        image_set.methods[label] = out
        return float(np.mean([r['seconds'] for r in result.items.values()]))

    for label, options in runs.items():
        image_set.seconds[label] = restored(label, options)
        print(f'{image_set.name} {label}: {image_set.seconds[label]:.2f} s/image', flush=True)
    for strength, seed in ((strength, seed) for strength in args.outside for seed in args.seeds):
        label, whole = f'diffusion_blind_outside{strength:g}_seed{seed}', f'diffusion_blind_whole_seed{seed}'
        image_set.methods[label] = outside_outputs(image_set, image_set.methods[whole], strength,
                                                   osp.join(work, 'restored', image_set.name, label))
        image_set.seconds[label] = image_set.seconds[whole]
        for passes in args.passes:
            again = f'diffusion_blind_outside{strength:g}_passes{passes}_seed{seed}'
            image_set.seconds[again] = image_set.seconds[whole] + restored(
                again, dict(diffusion, input=image_set.methods[label], seed=seed, passes=passes - 1))


def outside_outputs(image_set: ImageSet, whole: str, strength: float, out: str) -> str:
    """What ``desra restore --masks MASKS --outside STRENGTH`` writes, composed from the whole-image restoration
    ``whole`` of the same seed and the set's masks (the default feather); returns ``out``."""
    os.makedirs(out, exist_ok=True)
    for name in list_images(image_set.images):
        mask = read_mask(osp.join(image_set.masks, f'{stem(name)}.png'))
        weights = blend_weights(mask, default_of(restore.RestoreSettings, 'feather'), strength)
        composed = composite(read_image(osp.join(image_set.images, name)), read_image(osp.join(whole, name)), weights)
        write_image(osp.join(out, f'{stem(name)}.png'), composed)
    return out


def quality(folder: str, hr_dir: str, masks: Optional[str] = None, original: Optional[str] = None) -> Dict[str, float]:
    """Mean PSNR / SSIM (BasicSR, RGB, 4-pixel border) against HR; with ``masks``, also PSNR inside them, NIQE, and
    the detail kept outside them relative to ``original``."""
    from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim
    rows: Dict[str, List[float]] = {}
    for name in list_images(folder):
        out, hr = read_image(osp.join(folder, name)), read_image(osp.join(hr_dir, f'{stem(name)}.png'))
        if out.shape != hr.shape:
            raise SystemExit(f'{osp.join(folder, name)}: size {out.shape[1]}x{out.shape[0]} differs from the HR '
                             f'photo ({hr.shape[1]}x{hr.shape[0]})')
        row = {'psnr': calculate_psnr(out, hr, crop_border=4), 'ssim': calculate_ssim(out, hr, crop_border=4)}
        if masks:
            mask = read_mask(osp.join(masks, f'{stem(name)}.png'))
            if mask.any():
                err = (out.astype(np.float64) - hr.astype(np.float64))[mask]
                row['psnr_in_mask'] = 10 * np.log10(255.0**2 / max(float((err**2).mean()), 1e-10))
            row['niqe'] = float(calculate_niqe(out, crop_border=4, input_order='HWC', convert_to='y'))
            row['detail_outside'] = detail_outside(read_image(osp.join(original, name)), out, mask)['std_ratio']
        for key, value in row.items():
            rows.setdefault(key, []).append(float(value))
    return {key: float(np.nanmean(values)) for key, values in rows.items()}


def score(image_set: ImageSet, work: str, device: str) -> Dict[str, dict]:
    """The figures of every method of a set (see the module docstring)."""
    figures = {}
    for label, folder in image_set.methods.items():
        row = quality(folder, image_set.hr, image_set.masks, image_set.images)
        result = checked(detect.run(detect.DetectSettings(
            mse=image_set.reference, gan=folder, out=osp.join(work, 'detect', image_set.name, label), device=device,
            progress=False)))
        row['area'] = 100 * float(np.mean([r['artifact_fraction'] for r in result.items.values()]))
        if label in image_set.seconds:
            row['seconds_per_image'] = image_set.seconds[label]
        figures[label] = row
    base = figures['input']
    for row in figures.values():
        row['area_down'] = 100 * (1 - row['area'] / base['area']) if base['area'] > 0 else None
        row['psnr_gain'] = row['psnr'] - base['psnr']
    # No figure (a mean over no masked pixel, no area to remove) is None, which JSON writes as null.
    return {label: {k: (v if v is not None and np.isfinite(v) else None) for k, v in row.items()}
            for label, row in figures.items()}


def target_checks(results: Dict[str, Dict[str, dict]], seeds: List[int]) -> Dict[str, Dict[str, bool]]:
    """Whether the blind diffusion restorer meets the targets of :data:`TARGETS`, per seed and mode: inside the masks
    (``seedS``), on the whole image (``whole_seedS``), at each ``--outside`` strength (``outsideA_seedS``) and pass
    count (``outsideA_passesN_seedS``)."""
    checks = {}
    for set_name, (area_down, gain, detail) in TARGETS.items():
        for label, row in results.get(set_name, {}).items():
            mode = label[len('diffusion_blind_'):]
            if not label.startswith('diffusion_blind_') or not any(mode.endswith(f'seed{s}') for s in seeds):
                continue
            met = row['area_down'] is not None and row['area_down'] >= area_down and row['psnr_gain'] >= gain
            if detail is not None:
                met = met and row['detail_outside'] is not None and row['detail_outside'] >= detail
            checks.setdefault(set_name, {})[mode] = bool(met)
    return checks


def main(argv: List[str] = None) -> dict:
    """Run the benchmark (see the module docstring).

    Args:
        argv (list[str] | None): Command-line arguments.

    Returns:
        dict: The report (settings, image counts, figures per set and method, target checks), also written to
        ``WORK/results.json`` (``WORK/results_SETS.json`` with ``--sets``).
    """
    args = parse_args(argv)
    check_args(args)
    for path in (args.restorer, args.regression):
        if path and not osp.isfile(path):
            raise SystemExit(f'{path}: no restorer checkpoint (the committed demo weights, or desra restore train; '
                             'see docs/restore.md)')
    if not osp.isfile(args.zoo):
        raise SystemExit(f'{args.zoo}: no zoo manifest (make zoo writes it)')
    work = osp.abspath(args.work)
    sets = zoo_sets(args, work)
    if 'synthetic' in args.sets:
        names = [stem(name) for name in list_images(sets[0].images)]
        sets.append(synthetic_set(args, work, sets[0].hr, names))
    sets = [image_set for image_set in sets if image_set.name in args.sets]
    results = {}
    for image_set in sets:
        restore_runs(args, image_set, work)
        results[image_set.name] = score(image_set, work, args.device)
    report = dict(split=args.split, restorer=args.restorer, regression=args.regression, seeds=args.seeds,
                  steps=args.steps, seen=args.seen, unseen=args.unseen,
                  images={s.name: len(list_images(s.images)) for s in sets},
                  figures=results, targets=target_checks(results, args.seeds))
    everything = len(args.sets) == 3
    write_json(osp.join(work, 'results.json' if everything else f'results_{"_".join(args.sets)}.json'), report)
    print_results(report)
    return report


def print_results(report: dict) -> None:
    """Print one table per set and the target checks."""
    columns = ('psnr', 'psnr_gain', 'ssim', 'psnr_in_mask', 'niqe', 'area', 'area_down', 'detail_outside',
               'seconds_per_image')
    for set_name, figures in report['figures'].items():
        print(f'\n{set_name} ({report["images"][set_name]} images, split {report["split"]})')
        rows = [[label] + [f'{row[c]:.3f}' if row.get(c) is not None else '-' for c in columns]
                for label, row in figures.items()]
        print(format_table(['method', *columns], rows))
    print(f'\ntargets (blind diffusion, {report["steps"]} steps; in the masks unless the mode says): ' + '; '.join(
        f'{set_name} {mode}: {"met" if met else "missed"}' for set_name, modes in report['targets'].items()
        for mode, met in modes.items()))


if __name__ == '__main__':
    run_main(main)
