"""The cross-domain test on deraining (docs/deraining.md): DeSRA-det, the zoo localiser and fusion on another task.

The cross-domain paper (Zhao) uses a localiser trained on GAN-SR artifacts on the outputs of GAN deraining models and
fuses them region by region; its claim is that the fused output beats every single model in PSNR and SSIM. This
benchmark tests that claim on the demo corpus, with rain made by ``desra zoo rain``:

1. **Rain.** The clean photos of the corpus's fine-tune and held-out splits (``demo_data/manifest.csv``, HR photos in
   ``datasets/demo/hr``) get synthetic rain (``WORK/rain/<split>/img``, seed ``--rain-seed``; the training photos of
   the models had rain of seed 0 on other photos).
2. **Deraining.** ``desra sr`` with each model of ``options/derain/`` (``pixel`` and ``--gan-models``; weights
   ``<weights-dir>/derain_<model>.pth``, built by ``make derain``).
3. **DeSRA-det** of every GAN model against the pixel-loss model, as on SR (the pixel model plays the MSE-SR model).
4. **Localiser** (``--localizer CONFIG CHECKPOINT``, e.g. the zoo localiser, which never saw rain):
   ``desra detect --method localizer`` on the GAN models' held-out outputs, scored against DeSRA-det's masks (IoU
   x100, region precision and recall).
5. **Fusion.** ``desra fuse`` of the GAN models' outputs: ``fused_desra`` with DeSRA's scores and the pixel model as
   fallback, and with ``--localizer`` ``fused_localizer`` with the localiser's scores (no pixel model). The models
   are listed best first by their mean PSNR on the fine-tune split (the preference among equally clean models), a
   setting chosen on the fine-tune split only.

For each split: PSNR and SSIM against the clean photos (BasicSR, RGB, 4-pixel border) of the rainy input, of every
model and of the fused outputs, in the paper's table shape (one row a method, PSNR / SSIM per split), and
DeSRA-det's artifact area (percent) of the GAN models and fused outputs. ``fused_beats_every_gan`` says whether a
fused output has PSNR and SSIM at least every GAN model's on the held-out split. Written to ``WORK/results.json``;
every stage is a ``desra`` job, so a second run with the same ``--work`` resumes. Usage (``make bench-derain``)::

    .venv/bin/python -m benchmarks.bench_derain --work results/bench_derain \\
        --localizer results/zoo_localizer/localizer_config.py results/zoo_localizer/localizer.pth
"""
import argparse
import os
import os.path as osp
import time
from typing import Dict, List

import cv2
import numpy as np

from benchmarks.bench_localizer_fusion import SCORES, artifact_area, image_quality
from benchmarks.common import REPO, check_paths, checked, run_main, write_json
from desra_basicsr.demo import PRETRAINED
from desra_basicsr.demo_corpus import read_manifest, split_names
from desra_basicsr.evaluation.folders import format_table
from desra_basicsr.jobs import detect, evaluate, fuse, sr, zoo_rain

#: The GAN deraining models of ``options/derain/``.
GAN_MODELS = ('gan_vgg', 'gan_unetd', 'gan_unetd_lsgan')
#: The pixel-loss model: DeSRA-det's reference and fusion's fallback.
PIXEL = 'pixel'
#: The splits scored; the fine-tune split also orders the models for fusion.
SPLITS = ('finetune', 'heldout')


def parse_args(argv: List[str] = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', required=True, help='work folder (rain, outputs, masks, fused, results.json)')
    parser.add_argument('--manifest', default=osp.join(REPO, 'demo_data', 'manifest.csv'), help='corpus manifest')
    parser.add_argument('--hr', default=osp.join(REPO, 'datasets', 'demo', 'hr'), help='clean photos (<name>.png)')
    parser.add_argument('--options-dir', default=osp.join(REPO, 'options', 'derain'), help='the models\' options')
    parser.add_argument('--weights-dir', default=PRETRAINED, help='folder of derain_<model>.pth')
    parser.add_argument('--gan-models', nargs='+', default=list(GAN_MODELS), help='GAN deraining models (>= 2)')
    parser.add_argument('--localizer', nargs=2, metavar=('CONFIG', 'CHECKPOINT'), default=None,
                        help='an artifact localiser (desra localizer train output) to score and fuse with')
    parser.add_argument('--rain-seed', type=int, default=1, help='seed of the test rain')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    args = parser.parse_args(argv)
    if len(set(args.gan_models)) < 2 or PIXEL in args.gan_models:
        parser.error(f'--gan-models: give at least 2 different GAN models other than {PIXEL!r}, got {args.gan_models}')
    for model in [PIXEL] + args.gan_models:
        for path in (osp.join(args.options_dir, f'{model}.yml'), osp.join(args.weights_dir, f'derain_{model}.pth')):
            if not osp.isfile(path):
                parser.error(f'{path}: not found (make derain trains the deraining models of options/derain)')
    if not osp.isdir(args.hr):
        parser.error(f'--hr {args.hr}: not a folder (scripts/prepare_demo_data.py makes datasets/demo/hr)')
    check_paths([('--localizer', path) for path in args.localizer or ()])
    check_paths([('--manifest', args.manifest)])
    return args


def link_split(photos: List[str], hr: str, folder: str) -> None:
    """Link the clean photos of one split into ``folder`` (so the rain job reads that split only)."""
    os.makedirs(folder, exist_ok=True)
    for name in photos:
        source, link = osp.join(hr, f'{name}.png'), osp.join(folder, f'{name}.png')
        if not osp.isfile(source):
            raise SystemExit(f'{source}: the photo {name!r} of the manifest is missing (scripts/prepare_demo_data.py)')
        if not osp.lexists(link):
            os.symlink(osp.abspath(source), link)


def main(argv: List[str] = None) -> dict:
    """Run the benchmark (see the module docstring).

    Args:
        argv (list[str] | None): Command-line arguments.

    Returns:
        dict: The figures written to ``WORK/results.json``.
    """
    args = parse_args(argv)
    cv2.setNumThreads(1)
    work = osp.abspath(args.work)
    path = lambda *parts: osp.join(work, *parts)  # noqa: E731
    names = split_names(read_manifest(args.manifest))
    gans = list(args.gan_models)
    seconds: Dict[str, float] = {}
    detections = {}

    # 1-3. Rain, deraining, DeSRA-det of every GAN model against the pixel model.
    for split in SPLITS:
        link_split(names[split], args.hr, path('clean', split))
        checked(zoo_rain.run(zoo_rain.ZooRainSettings(hr=path('clean', split), out=path('rain', split),
                                                      seed=args.rain_seed)))
        for model in [PIXEL] + gans:
            start = time.perf_counter()
            checked(sr.run(sr.SRSettings(
                input=path('rain', split, zoo_rain.RAIN_IMAGE_DIR), out=path('out', split, model),
                opt=osp.join(args.options_dir, f'{model}.yml'),
                weights=osp.join(args.weights_dir, f'derain_{model}.pth'), device=args.device)))
            seconds[f'derain_{split}_{model}'] = round(time.perf_counter() - start, 2)
        for model in gans:
            detections[split, model] = checked(detect.run(detect.DetectSettings(
                mse=path('out', split, PIXEL), gan=path('out', split, model), out=path('masks', split, model),
                device=args.device)))

    # 4. The localiser against DeSRA-det on the held-out outputs.
    localizer_scores = None
    localizer_files = {}
    if args.localizer:
        localizer_files = dict(localizer_config=args.localizer[0], localizer_checkpoint=args.localizer[1])
        localizer_scores = {}
        for model in gans:
            checked(detect.run(detect.DetectSettings(
                mse=None, gan=path('out', 'heldout', model), out=path('localizer_masks', model), method='localizer',
                device=args.device, **localizer_files)))
            mean = evaluate.run(evaluate.EvaluateSettings(gt=path('masks', 'heldout', model),
                                                          pred=path('localizer_masks', model))).mean
            localizer_scores[model] = {k: float(mean[k]) for k in SCORES}

    # 5. Fusion, the models best first by their fine-tune PSNR; quality and DeSRA-det area of every row.
    quality = {split: {} for split in SPLITS}
    for split in SPLITS:
        quality[split]['rain'] = image_quality(path('rain', split, zoo_rain.RAIN_IMAGE_DIR), path('clean', split))
        for model in [PIXEL] + gans:
            quality[split][model] = image_quality(path('out', split, model), path('clean', split))
    order = sorted(gans, key=lambda model: -quality['finetune'][model]['psnr'])
    fused = ['fused_desra'] + (['fused_localizer'] if args.localizer else [])
    area = {split: {} for split in SPLITS}
    for split in SPLITS:
        inputs = [path('out', split, model) for model in order]
        checked(fuse.run(fuse.FuseSettings(inputs=inputs, mse=path('out', split, PIXEL),
                                           out=path('fused', split, 'fused_desra'))))
        if args.localizer:
            checked(fuse.run(fuse.FuseSettings(inputs=inputs, out=path('fused', split, 'fused_localizer'),
                                               device=args.device, **localizer_files)))
        for label in fused:
            folder = path('fused', split, label)
            quality[split][label] = image_quality(folder, path('clean', split))
            detections[split, label] = checked(detect.run(detect.DetectSettings(
                mse=path('out', split, PIXEL), gan=folder, out=path('masks', split, label), device=args.device)))
        for label in gans + fused:
            area[split][label] = artifact_area(detections[split, label])

    held = quality['heldout']
    beats = {label: all(held[label]['psnr'] >= held[m]['psnr'] and held[label]['ssim'] >= held[m]['ssim']
                        for m in gans) for label in fused}
    results = dict(
        images={split: len(names[split]) for split in SPLITS},
        rain_seed=args.rain_seed,
        fusion_order=order,
        quality=quality,
        artifact_area=area,
        localizer=dict(config=args.localizer[0], checkpoint=args.localizer[1],
                       scores=localizer_scores) if args.localizer else None,
        fused_beats_every_gan=beats,
        seconds=seconds)
    write_json(path('results.json'), results)
    print_results(results, gans, fused)
    return results


def print_results(results: dict, gans: List[str], fused: List[str]) -> None:
    """Print the paper-shaped table, the localiser's scores and the verdict on the paper's claim."""
    rows = []
    for label in ['rain', PIXEL] + gans + fused:
        row = [label]
        for split in SPLITS:
            q = results['quality'][split][label]
            a = results['artifact_area'][split].get(label)
            row += [f'{q["psnr"]:.2f}', f'{q["ssim"]:.4f}', '-' if a is None else f'{a:.2f}']
        rows.append(row)
    n = results['images']
    header = ['method'] + [f'{s} ({n[s]}) {m}' for s in SPLITS for m in ('PSNR', 'SSIM', 'area %')]
    print(f'\n=== Deraining (rain seed {results["rain_seed"]}): PSNR / SSIM against the clean photos, DeSRA-det area '
          'against the pixel model ===')
    print(format_table(header, rows))
    if results['localizer']:
        scores = results['localizer']['scores']
        print('\nlocaliser against DeSRA-det on the held-out outputs:')
        print(format_table(['model', 'IoU', 'precision', 'recall'],
                           [[m, f'{s["iou"]:.1f}', f'{s["precision"]:.3f}', f'{s["recall"]:.3f}']
                            for m, s in scores.items()]))
    for label, beats in results['fused_beats_every_gan'].items():
        verdict = 'beats' if beats else 'does NOT beat'
        print(f'{label} {verdict} every GAN model on the held-out split (PSNR and SSIM)')
    print(f'fusion order (fine-tune PSNR, best first): {", ".join(results["fusion_order"])}')
    best = max(gans, key=lambda m: results['quality']['heldout'][m]['psnr'])
    print(f'best single GAN model on the held-out split: {best} '
          f'({results["quality"]["heldout"][best]["psnr"]:.2f} dB); mean of all: '
          f'{np.mean([results["quality"]["heldout"][m]["psnr"] for m in gans]):.2f} dB')


if __name__ == '__main__':
    run_main(main)
