"""``desra pseudo-gt``: write DeSRA pseudo-GT images ``M * y_mse + (1 - M) * y_gan`` (paper eq. 10).

For users who prefer precomputed training data (``PseudoGTPairedDataset`` with ``dataroot_gt``) over merging on
the fly. Images are paired by file stem across ``--mse``, ``--gan`` and ``--masks`` (e.g. the output folder of
``desra detect``). Outputs:

* ``OUT/<stem>.png``: the pseudo-GT (lossless PNG), written atomically;
* ``OUT/summary.json``: per image ``status`` (done / skipped / error), ``artifact_fraction`` (mask weight mean),
  ``height``, ``width``.

Resumable: images whose output exists are skipped. Under ``python -m torch.distributed.run`` every rank merges its
share. The exit code is non-zero when any image failed (missing partner, size mismatch, unreadable file).
"""
import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pseudo-gt`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'pseudo-gt',
        help='merge MSE-SR and GAN-SR outputs with artifact masks into pseudo-GT images',
        description='Write pseudo-GT images M * y_mse + (1 - M) * y_gan (DeSRA eq. 10): inside each artifact mask '
        '(white, > 127) the MSE-SR output replaces the GAN-SR output. Files are paired by stem. Existing outputs '
        'are skipped (resume).')
    parser.add_argument('--mse', required=True, help='folder of MSE-SR outputs')
    parser.add_argument('--gan', required=True, help='folder of GAN-SR outputs')
    parser.add_argument('--masks', required=True, help='folder of artifact masks (e.g. `desra detect` output)')
    parser.add_argument('--out', required=True, help='output folder for pseudo-GT PNGs and summary.json')
    parser.add_argument('--dilate', type=float, default=0, help='grow masks by this many pixels (default 0)')
    parser.add_argument(
        '--feather',
        type=float,
        default=0,
        help='soft mask edges: linear fall-off over this many pixels outside the mask (default 0)')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``desra pseudo-gt``.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: 0 if every image succeeded, 1 if some failed, 2 for unusable arguments.
    """
    import os.path as osp

    from desra_basicsr.data.artifact_mask_transform import ArtifactMaskTransform
    from desra_basicsr.errors import DesraInputError
    from desra_basicsr.file_jobs import dist_info, run_file_jobs, summary_exit_code
    from desra_basicsr.image_io import pair_by_stem, read_image, read_mask, stem, write_image

    try:
        rank, _ = dist_info()
        transform = ArtifactMaskTransform(dilate=args.dilate, feather=args.feather)
        if osp.abspath(args.out) in {osp.abspath(folder) for folder in (args.mse, args.gan, args.masks)}:
            raise DesraInputError(f'{args.out}: --out must differ from the input folders')
        triples, missing = pair_by_stem([args.mse, args.gan, args.masks])
    except (DesraInputError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2

    def output(triple) -> str:
        return osp.join(args.out, f'{stem(triple[1])}.png')

    def process(triple) -> dict:
        mse_path, gan_path, mask_path = triple
        y_mse, y_gan, mask = read_image(mse_path), read_image(gan_path), read_mask(mask_path)
        if y_mse.shape != y_gan.shape:
            raise DesraInputError(f'{gan_path}: size {y_gan.shape[1]}x{y_gan.shape[0]} differs from its MSE-SR '
                                  f'partner {mse_path} ({y_mse.shape[1]}x{y_mse.shape[0]})')
        if mask.shape != y_gan.shape[:2]:
            raise DesraInputError(f'{mask_path}: mask size {mask.shape[1]}x{mask.shape[0]} differs from the image '
                                  f'size {y_gan.shape[1]}x{y_gan.shape[0]} of {gan_path}')
        weight = transform.weight(mask)
        write_image(output(triple), transform.merge(y_mse, y_gan, weight))
        return {
            'artifact_fraction': round(float(weight.mean()), 6),
            'height': int(y_gan.shape[0]),
            'width': int(y_gan.shape[1])
        }

    extra = {
        name: {
            'status': 'error',
            'message': f'{name}: no partner file in {", ".join(folders)}'
        }
        for name, folders in missing.items()
    }
    if rank == 0:
        for record in extra.values():
            print(f'error: {record["message"]}', file=sys.stderr)
    summary_path = osp.join(args.out, 'summary.json')
    summary = run_file_jobs(
        triples,
        key=lambda triple: stem(triple[1]),
        outputs=lambda triple: [output(triple)],
        process=process,
        summary_path=summary_path,
        desc='pseudo-gt',
        meta={
            'command': 'pseudo-gt',
            'mse': args.mse,
            'gan': args.gan,
            'masks': args.masks,
            'dilate': args.dilate,
            'feather': args.feather
        },
        extra_records=extra)
    if rank == 0:
        counts = summary['counts']
        print(f'pseudo-gt: {counts["done"]} done, {counts["skipped"]} skipped, {counts["error"]} failed; '
              f'summary: {summary_path}')
    return summary_exit_code(summary)
