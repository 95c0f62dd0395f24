"""Images per minute of the artifact localiser against DeSRA-det, per localiser architecture and per MSE-SR model.

The localiser reads the GAN-SR output alone; DeSRA-det first needs the MSE-SR model's output of the same LR image.
What that saves depends on the MSE-SR model: the demo's (SRVGGNetCompact, 32 features, 8 convolutions) costs little,
Real-ESRGAN's a lot (RRDBNet with 23 blocks: the architecture of RealESRNet_x4plus, the MSE-SR twin of
RealESRGAN_x4plus, and the ``network_g`` of ``options/finetune_realesrgan_desra.yml``). On the first ``--images``
LR photos of ``--lr`` (default: 8 of the demo's held-out photos), in this process:

* the GAN-SR outputs of ``--gan-opt`` / ``--gan-weights`` (default ``demo_gan``), untimed: the images both methods
  look at;
* **DeSRA-det**, per image: the MSE-SR model on the LR photo (:class:`~desra_basicsr.inference.SRInferencer`, whole
  image) and the ``desra`` method without semantics (``desra detect``'s default without a segmentation
  checkpoint), once with the demo's MSE-SR model (``--mse-opt`` / ``--mse-weights``) and once with RRDBNet 23 blocks
  (``--rrdb-weights``, else random weights: the time does not depend on the values);
* **the localiser**, per image: ``desra detect --method localizer``'s detector on the GAN-SR output, for every
  architecture of ``--archs`` with the config ``desra localizer train`` writes for ``--crop-size`` (sliding windows
  of that size) and random weights, and for every trained ``--localizer LABEL CONFIG CHECKPOINT``.

Each row is the best of ``--repeat`` passes over the photos after one warm-up image; loading the models is timed
apart and left out of the rates. Printed: seconds per image, images per minute and each localiser's rate as a
multiple of each DeSRA-det's (the localiser's speed target: 10x). The figures are written to
``WORK/results.json``.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.bench_localizer_speed [--archs fast-scnn deeplabv3plus-r18] [--images 0]
"""
import argparse
import os
import os.path as osp
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

from benchmarks.common import (REALESRGAN_OPTIONS, REPO, best_time, check_counts, check_paths, ratio,
                               realesrgan_finetune_options, run_main, timed, write_json)
from desra_basicsr.demo import DEMO_DATA, GAN_OPT, MSE_OPT, PRETRAINED
from desra_basicsr.image_io import list_images, read_image


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring); missing files and folders are refused here."""
    from desra_basicsr.localizer.config import ARCHS
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--lr', default=osp.join(DEMO_DATA, 'heldout_lr'), help='folder of LR photos')
    parser.add_argument('--gan-opt', default=GAN_OPT)
    parser.add_argument('--gan-weights', default=osp.join(PRETRAINED, 'demo_gan_x4.pth'))
    parser.add_argument('--mse-opt', default=MSE_OPT)
    parser.add_argument('--mse-weights', default=osp.join(PRETRAINED, 'demo_mse_x4.pth'))
    parser.add_argument(
        '--rrdb-weights',
        default=None,
        help=f'weights of the network_g of {osp.relpath(REALESRGAN_OPTIONS, REPO)} '
        '(default: random, for the time alone)')
    parser.add_argument(
        '--archs',
        nargs='+',
        choices=sorted(ARCHS),
        default=sorted(ARCHS),
        help='localiser architectures timed with random weights')
    parser.add_argument(
        '--localizer',
        nargs=3,
        action='append',
        default=[],
        metavar=('LABEL', 'CONFIG', 'CHECKPOINT'),
        help='a trained localiser (repeatable)')
    parser.add_argument('--crop-size', type=int, default=192, help='training crop = inference window of --archs')
    parser.add_argument('--images', type=int, default=8, help='only the first N photos (0: all)')
    parser.add_argument('--repeat', type=int, default=2, help='passes per row; the best one counts')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--work', default=osp.join(REPO, 'results', 'bench_localizer_speed'))
    args = parser.parse_args(argv)
    check_counts(args, '--crop-size')
    check_paths([('--lr', args.lr)], kind='folder')
    check_paths([('--gan-opt', args.gan_opt), ('--gan-weights', args.gan_weights), ('--mse-opt', args.mse_opt),
                 ('--mse-weights', args.mse_weights), ('--rrdb-weights', args.rrdb_weights)]
                + [(f'--localizer {label}', path) for label, *paths in args.localizer for path in paths])
    return args


def random_localizer(arch: str, crop_size: int, image_dir: str, out: str) -> Tuple[str, str]:
    """The config ``desra localizer train`` writes for ``arch`` and ``crop_size``, with a random-weight checkpoint.

    Args:
        arch (str): A key of :data:`desra_basicsr.localizer.config.ARCHS`.
        crop_size (int): Training crop and inference window.
        image_dir (str): A folder of images (the config needs a training source; nothing trains).
        out (str): Folder the two files are written to.

    Returns:
        tuple[str, str]: The config and checkpoint paths.
    """
    from desra_basicsr.localizer.config import DataSource, build_train_config
    from desra_basicsr.tools.mmseg_weights import random_checkpoint
    os.makedirs(out, exist_ok=True)
    config = osp.join(out, 'localizer_config.py')
    build_train_config(
        arch, [DataSource(image_dir)], osp.join(out, 'work_dir'), iters=1, artifact_weight=1.0,
        crop_size=crop_size).dump(config)
    return config, random_checkpoint(config, osp.join(out, 'localizer.pth'))


def main(argv: Optional[List[str]] = None) -> Dict:
    """Time every row and print the ratios (see the module docstring).

    Args:
        argv (list[str] | None): Command-line arguments.

    Returns:
        dict: The figures written to ``WORK/results.json``.
    """
    args = parse_args(argv)
    from desra_basicsr.detection.methods import build_detector
    from desra_basicsr.detection.segmenters import build_segmenter
    from desra_basicsr.inference import SRInferencer, build_generator, generator_from_options, size_multiple
    from desra_basicsr.localizer.method import LOCALIZER_METHOD

    if args.images < 0 or args.repeat < 1:
        raise SystemExit(f'--images {args.images} --repeat {args.repeat}: give --images >= 0 and --repeat >= 1')
    names = list_images(args.lr)[:args.images or None]
    if not names:
        raise SystemExit(f'{args.lr}: no images')
    lrs = [read_image(osp.join(args.lr, name)) for name in names]
    net, multiple, _ = generator_from_options(args.gan_opt, args.gan_weights)
    gan = SRInferencer(net, device=args.device, size_multiple=multiple)
    gans = [gan.enhance(lr, name) for lr, name in zip(lrs, names)]
    print(f'{len(names)} photos of {args.lr}, GAN-SR outputs {gans[0].shape[1]}x{gans[0].shape[0]} and others')

    def mse_models() -> List[Tuple[str, Callable]]:
        rrdb = dict(realesrgan_finetune_options()['network_g'])
        arch = rrdb.pop('type')
        return [
            ('demo MSE-SR (SRVGGNetCompact)', lambda: generator_from_options(args.mse_opt, args.mse_weights)[:2]),
            (f'{arch} {rrdb["num_block"]} blocks' + ('' if args.rrdb_weights else ' (random weights)'), lambda:
             (build_generator(arch, rrdb, args.rrdb_weights), size_multiple(arch, rrdb))),
        ]

    rows: Dict[str, Dict] = {}

    def measure(label: str, kind: str, load_seconds: float, per_image: Callable[[int], object]) -> None:
        per_image(0)  # warm-up
        seconds, _, _ = best_time(lambda: [per_image(i) for i in range(len(names))], repeat=args.repeat)
        rows[label] = dict(
            kind=kind,
            load_seconds=load_seconds,
            seconds_per_image=seconds / len(names),
            images_per_minute=60 * len(names) / seconds)
        print(
            f'{label}: load {load_seconds:.2f} s, {seconds / len(names):.3f} s per image, '
            f'{60 * len(names) / seconds:.1f} images per minute',
            flush=True)

    desra = build_detector('desra', segmenter=build_segmenter('none'), device=args.device)
    for label, build in mse_models():
        (mse_net, mse_multiple), load = timed(build)
        mse = SRInferencer(mse_net, device=args.device, size_multiple=mse_multiple)
        measure(f'DeSRA-det, {label}', 'desra_det', load,
                lambda i: desra.detect(mse.enhance(lrs[i], names[i]), gans[i]))
    with tempfile.TemporaryDirectory() as tmp:
        localizers = [(f'localiser {arch} (random weights, {args.crop_size}-pixel windows)',
                       random_localizer(arch, args.crop_size, args.lr, osp.join(tmp, arch))) for arch in args.archs]
        localizers += [(f'localiser {label}', (config, checkpoint)) for label, config, checkpoint in args.localizer]
        for label, (config, checkpoint) in localizers:
            detector, load = timed(lambda: build_detector(
                LOCALIZER_METHOD, localizer_config=config, localizer_checkpoint=checkpoint, device=args.device))
            measure(label, 'localizer', load, lambda i: detector.detect(None, gans[i]))

    print('\nimages per minute of each localiser as a multiple of DeSRA-det\'s (target: 10x):')
    baselines = {label: row for label, row in rows.items() if row['kind'] == 'desra_det'}
    for label, row in rows.items():
        if row['kind'] == 'localizer':
            row['ratio'] = {base: row['images_per_minute'] / b['images_per_minute'] for base, b in baselines.items()}
            print(f'  {label}: ' + ', '.join(f'{ratio(row["images_per_minute"], b["images_per_minute"])} {base}'
                                             for base, b in baselines.items()))
    import torch
    results = dict(
        images=len(names),
        lr=args.lr,
        device=args.device,
        torch_threads=torch.get_num_threads(),
        crop_size=args.crop_size,
        rows=rows)
    write_json(osp.join(args.work, 'results.json'), results)
    return results


if __name__ == '__main__':
    run_main(main)
