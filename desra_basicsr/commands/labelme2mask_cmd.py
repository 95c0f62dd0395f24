"""``desra labelme2mask``: ground-truth artifact masks from labelme annotations.

Every ``*.json`` in ``--json`` becomes ``OUT/<json stem>.png`` (uint8 0/255, the annotated image's size), the
union of its polygon, rectangle and circle shapes (see :mod:`desra_basicsr.evaluation.labelme`). Resumable: masks
that exist are kept; ``OUT/summary.json`` records each file's status (and the error of files that failed).
"""
import argparse
import os
import os.path as osp
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``labelme2mask`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'labelme2mask',
        help='turn labelme JSON annotations into binary ground-truth masks',
        description='Rasterise the polygon / rectangle / circle shapes of each labelme JSON file in --json into a '
        'binary mask (PNG, 255 = artifact) of the image size given by imageHeight / imageWidth, written as '
        'OUT/<stem>.png. With --label, only shapes carrying one of the given labels are used.')
    parser.add_argument('--json', required=True, help='folder of labelme JSON files')
    parser.add_argument('--out', required=True, help='output folder for the masks')
    parser.add_argument('--label', nargs='+', help='use only shapes with these labels (default: every shape)')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``desra labelme2mask``.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: Exit code: 0 when every file converted, 1 otherwise (bad files are listed in ``OUT/summary.json``
        and on the terminal; good ones are written).
    """
    import numpy as np

    from desra_basicsr.evaluation.labelme import labelme_to_mask
    from desra_basicsr.file_jobs import STATUS_ERROR, run_file_jobs, summary_exit_code
    from desra_basicsr.image_io import stem, write_mask

    if not osp.isdir(args.json):
        print(f'error: {args.json}: not a directory', file=sys.stderr)
        return 1
    files = sorted(osp.join(args.json, f) for f in os.listdir(args.json) if f.lower().endswith('.json'))
    if not files:
        print(f'error: {args.json}: no .json file found', file=sys.stderr)
        return 1

    def out_path(path: str) -> str:
        return osp.join(args.out, f'{stem(path)}.png')

    def convert(path: str) -> dict:
        mask = labelme_to_mask(path, args.label)
        write_mask(out_path(path), mask)
        return {'pixels': int(np.count_nonzero(mask)), 'json': path}

    summary_path = osp.join(args.out, 'summary.json')
    summary = run_file_jobs(
        files,
        key=stem,
        outputs=lambda p: [out_path(p)],
        process=convert,
        summary_path=summary_path,
        desc='labelme2mask',
        meta={
            'json': args.json,
            'label': args.label
        })
    items = summary['items'].values()
    empty = sum(1 for r in items if r.get('pixels') == 0)
    counts = summary['counts']
    print(f'{counts["done"]} mask(s) written to {args.out}, {counts["skipped"]} already there (kept; delete them '
          f'to convert again)' + (f'; {empty} without any matching shape (empty masks)' if empty else ''))
    for name, record in summary['items'].items():
        if record['status'] == STATUS_ERROR:
            print(f'error: {record["message"]}', file=sys.stderr)
    return summary_exit_code(summary)
