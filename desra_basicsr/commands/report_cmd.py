"""``desra report``: an HTML page and PNG grids showing what DeSRA detected (and removed), per image."""
import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'report',
        help='write an HTML page + PNG grids of LR / MSE-SR / GAN-SR / mask / pseudo-GT per image',
        description='Write OUT/index.html (self-contained: grids embedded as base64 PNG unless --link) and '
        'OUT/grids/<stem>.png: for each image the LR input, MSE-SR and GAN-SR outputs, the detected mask over '
        'the GAN-SR output, the pseudo-GT (computed from the mask unless --pseudo-gt is given) and the '
        'fine-tuned output when --finetuned is given, sorted by detected artifact area. Files are paired by '
        'stem; images missing from a folder are skipped with a notice.')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--lr', required=True, help='folder of LR inputs')
    parser.add_argument('--mse', required=True, help='folder of MSE-SR outputs')
    parser.add_argument('--gan', required=True, help='folder of GAN-SR outputs')
    parser.add_argument('--masks', required=True, help='folder of detected masks (of the GAN-SR outputs)')
    parser.add_argument('--pseudo-gt', help='folder of pseudo-GT images (default: computed from the masks)')
    parser.add_argument('--finetuned', help='folder of the fine-tuned model\'s outputs')
    parser.add_argument('--finetuned-masks', help='folder of masks detected on the fine-tuned outputs')
    parser.add_argument('--tile-height', type=int, default=256, help='tile height in pixels (default 256)')
    parser.add_argument(
        '--link', action='store_true', help='link the PNG grids from the page instead of embedding them')
    parser.add_argument('--title', default='DeSRA report', help='page title')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``desra report``.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: Exit code (0 on success, 1 on bad input).
    """
    from tqdm import tqdm

    from desra_basicsr.errors import DesraInputError
    from desra_basicsr.evaluation.report import ReportItem, write_report
    from desra_basicsr.image_io import pair_by_stem, stem

    if args.finetuned_masks and not args.finetuned:
        print('error: --finetuned-masks needs --finetuned', file=sys.stderr)
        return 1
    if args.tile_height < 16:
        print(f'error: --tile-height: must be at least 16, got {args.tile_height}', file=sys.stderr)
        return 1
    keys = ['lr', 'mse', 'gan', 'masks', 'pseudo_gt', 'finetuned', 'finetuned_masks']
    given = [k for k in keys if getattr(args, k)]
    try:
        pairs, missing = pair_by_stem([getattr(args, k) for k in given])
        if missing:
            shown = ', '.join(sorted(missing)[:5]) + (' ...' if len(missing) > 5 else '')
            print(
                f'notice: {len(missing)} image(s) missing from at least one folder, skipped: {shown}', file=sys.stderr)
        items = []
        for paths in pairs:
            found = dict(zip(given, paths))
            items.append(
                ReportItem(
                    name=stem(found['gan']),
                    lr=found['lr'],
                    mse=found['mse'],
                    gan=found['gan'],
                    mask=found['masks'],
                    pseudo_gt=found.get('pseudo_gt'),
                    finetuned=found.get('finetuned'),
                    finetuned_mask=found.get('finetuned_masks')))
        if not items:
            raise DesraInputError(f'{args.gan}: no image is present in every given folder')
        page = write_report(
            items,
            args.out,
            args.tile_height,
            embed=not args.link,
            title=args.title,
            progress=lambda it: tqdm(it, desc='report', unit='img', file=sys.stderr))
    except DesraInputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'report of {len(items)} image(s): {page}')
    return 0
