"""``desra calibrate``: per-class weights of the semantic adjustment, measured on a data set (paper eq. 8).

For every class ``k`` of the segmenter, ``A_k`` is the ``--percentile`` (85 in the paper) of the indicator ``D``
over all pixels of that class across the MSE-SR / GAN-SR pairs, and the weight is ``1 / A_k``. Memory stays flat
in the number of images (streaming histograms, see :mod:`desra_basicsr.evaluation.calibration`). The output is a
YAML table ``class name: weight`` that ``desra detect`` accepts as its class table; ``--released-format`` also
writes the authors' ``name--idx`` text format (20 bins).
"""
import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'calibrate',
        help='measure per-class weights (1 / percentile of D per class) on MSE-SR / GAN-SR pairs',
        description='Compute, for each segmentation class, the --percentile of the indicator D over every pixel of '
        'the class across the pairs (files paired by stem), and write the class weights 1 / A_k as a YAML table '
        'usable by `desra detect`. Without --seg-checkpoint there is no segmenter: every pixel falls in one '
        'class and all classes get the same weight.')
    parser.add_argument('--mse', required=True, help='folder of MSE-SR outputs')
    parser.add_argument('--gan', required=True, help='folder of GAN-SR outputs')
    parser.add_argument('--seg-config', help='mmseg config (default: the SegFormer mit-b5 ADE20K config)')
    parser.add_argument('--seg-checkpoint', help='mmseg checkpoint; without it, no segmentation (one class)')
    parser.add_argument(
        '--segment-image',
        choices=('gan', 'mse'),
        default='gan',
        help='which output is segmented (gan: as the release; mse: as the paper appendix)')
    parser.add_argument('--device', default='cpu', help='segmenter device (cpu, cuda)')
    parser.add_argument('--percentile', type=float, default=85.0, help='percentile of D per class (default 85)')
    parser.add_argument('--bins', type=int, default=10000, help='histogram bins over [0, 1] (default 10000)')
    parser.add_argument('--out', required=True, help='output YAML table (class name: weight)')
    parser.add_argument('--released-format', metavar='FILE', help='also write the released name--idx table here')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``desra calibrate``.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: Exit code (0 on success, 1 on bad input).
    """
    from tqdm import tqdm

    from desra_basicsr.detection.class_weights import ADE20K_CLASSES
    from desra_basicsr.errors import DesraInputError
    from desra_basicsr.evaluation.calibration import (accumulate, weights_from_percentiles, write_released_table,
                                                      write_weights_yaml)
    from desra_basicsr.image_io import pair_by_stem

    try:
        if not 0 < args.percentile <= 100:
            raise DesraInputError(f'--percentile: must be in (0, 100], got {args.percentile}')
        if args.bins < 20:
            raise DesraInputError(f'--bins: must be at least 20, got {args.bins}')
        if not args.out.lower().endswith(('.yml', '.yaml')):
            raise DesraInputError(f'{args.out}: the output table must be a .yml / .yaml file')
        pairs, missing = pair_by_stem([args.mse, args.gan])
        if missing:
            raise DesraInputError(f'{args.gan}: {len(missing)} image(s) lack a partner in --mse / --gan: '
                                  f'{", ".join(sorted(missing)[:5])}')
        if not pairs:
            raise DesraInputError(f'{args.gan}: no image pairs found')
        if args.seg_checkpoint:
            from desra_basicsr.detection.segmenters import build_segmenter
            segmenter = build_segmenter(
                'mmseg', config=args.seg_config, checkpoint=args.seg_checkpoint, device=args.device)
            names = tuple(segmenter.class_names)
            use_gan = args.segment_image == 'gan'

            def segment(y_mse, y_gan):
                return segmenter.segment(y_gan if use_gan else y_mse)
        else:
            print(
                'notice: no --seg-checkpoint: no semantic segmentation, every pixel falls in one class; all '
                'classes get the same weight',
                file=sys.stderr)
            names, segment = ADE20K_CLASSES, None
        hist = accumulate(
            tqdm(pairs, desc='calibrate', unit='pair', file=sys.stderr),
            num_classes=len(names) if segment else 1,
            segment=segment,
            bins=args.bins)
    except (DesraInputError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    percentiles = hist.percentile(args.percentile)
    pixels = hist.pixels()
    if segment is None:
        percentiles, pixels = percentiles.repeat(len(names)), pixels.repeat(len(names))
    weights, unseen = weights_from_percentiles(percentiles)
    header = [
        f'DeSRA class weights w = 1 / A, A = {args.percentile:g}th percentile of D per class '
        f'(desra calibrate, {len(pairs)} image pairs, --mse {args.mse}, --gan {args.gan}).',
        'segmentation: ' + (f'{args.seg_config or "default config"} + {args.seg_checkpoint}, {args.segment_image}-SR '
                            'segmented' if segment else 'none (all pixels in one class: every class has the same '
                            'weight)'),
    ]
    if unseen:
        header.append(f'{len(unseen)} class(es) had no pixel and get weight 1: ' + ', '.join(names[k] for k in unseen))
    write_weights_yaml(args.out, names, weights, header)
    if args.released_format:
        write_released_table(args.released_format, names, percentiles, header)
    print(f'{len(pairs)} pairs; class weights written to {args.out}' +
          (f' and {args.released_format}' if args.released_format else ''))
    if segment is None:
        print(f'  all pixels ({pixels[0]}): A = {percentiles[0]:.4f}  w = {weights[0]:.4f}')
        return 0
    seen = [k for k in range(len(names)) if k not in unseen]
    for k in sorted(seen, key=lambda k: -pixels[k])[:10]:
        print(f'  {names[k]:<20} A = {percentiles[k]:.4f}  w = {weights[k]:.4f}  ({pixels[k]} px)')
    if unseen:
        print(f'  {len(unseen)} class(es) without pixels: weight 1')
    return 0
