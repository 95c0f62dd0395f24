"""``desra fuse``: fuse the outputs of several SR models so that each region comes from one without artifacts there.

For each image stem present in every ``--inputs`` folder (SR outputs of the same LR images by different models),
the candidates are scored per pixel: with ``--mse``, by DeSRA's indicator against the MSE-SR output (``1 - D``);
otherwise by a localiser trained with ``desra localizer train`` (``--localizer-config``, ``--localizer-checkpoint``).
Each region comes from the candidate with the lowest score (the first listed among equal ones; with ``--mse``, the
MSE-SR output where every candidate has an artifact), and the sources are blended with feathered borders, so no
seam shows. This is the multi-model fusion of Zhao, "The Cross-Domain Application Research of a Super-Resolution
Semantic Artifact Rectification Method". With ``--lr`` (the LR inputs), every candidate first takes the LR image's
low frequencies (a colour fix), so a model whose colours drift neither wins regions with wrong colours nor brings
them into the result. Example::

    desra fuse --inputs sr/gan sr/finetuned sr/gan2 --mse sr/mse --out fused
    desra fuse --inputs sr/gan sr/gan2 sr/gan3 --localizer-config loc/localizer_config.py \\
        --localizer-checkpoint loc/localizer.pth --lr lr --out fused

Writes ``OUT/<stem>.png`` (fused), ``OUT/maps/<stem>.png`` (source of each pixel: k for the k-th folder of
``--inputs`` from 0, their count for the MSE-SR fallback) and ``OUT/summary.json`` (each image's ``shares`` per
source). Run it again to resume; other settings are refused unless ``--overwrite``. Exit code: 0, 1 when an image
failed (a stem missing from a folder, different sizes), 2 for unusable arguments. Python API:
:mod:`desra_basicsr.jobs.fuse`.
"""
import argparse

from desra_basicsr.commands import add_overwrite_argument, add_setting_arguments, job_command
from desra_basicsr.jobs.fuse import FuseSettings
from desra_basicsr.settings import default_of


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fuse`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'fuse',
        help='fuse several SR models\' outputs region by region, avoiding each one\'s artifacts',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--inputs', nargs='+', required=True, help='two or more folders of SR outputs (same stems)')
    parser.add_argument('--out', required=True, help='output folder (fused images, maps/, summary.json)')
    parser.add_argument('--mse', help='folder of MSE-SR outputs: DeSRA scores and the fallback source')
    parser.add_argument('--localizer-config', help='localizer_config.py (scores without --mse)')
    parser.add_argument('--localizer-checkpoint', help='localizer.pth (scores without --mse)')
    parser.add_argument(
        '--lr',
        help='folder of the LR inputs (same stems): every candidate (and the MSE-SR output) first takes the LR '
        'image\'s low frequencies, so colour drifts neither win nor spread')
    add_setting_arguments(
        parser, FuseSettings, {
            'region_sigma': 'smoothing of the scores, pixels',
            'margin': 'growth of each candidate\'s artifacts before the choice, pixels',
            'feather_sigma': 'blending width at region borders, pixels',
            'tie_margin': 'scores this close count as equal',
            'colour_sigma': 'with --lr: Gaussian sigma of the colour fix, SR pixels (coarser frequencies from the LR)',
        })
    parser.add_argument(
        '--artifact-threshold',
        type=float,
        help='score from which a candidate counts as an artifact (default: 0.3 with --mse, i.e. D < 0.7; 0.5 for '
        'localiser probabilities)')
    parser.add_argument('--device', default=default_of(FuseSettings, 'device'), help='localiser device: cpu, cuda or '
                        'cuda:N')
    add_overwrite_argument(parser)
    parser.set_defaults(func=job_command('desra_basicsr.jobs.fuse', 'FuseSettings', report))


def report(result, args: argparse.Namespace) -> None:
    """Print the counts and each source's mean share of the pixels."""
    from desra_basicsr.jobs.fuse import FuseRecord
    print(result.describe())
    shares = [record.shares for record in FuseRecord.done(result).values()]
    if shares:
        for k, source in enumerate(result.summary['meta']['sources']):
            mean = sum(s[k] for s in shares) / len(shares)
            print(f'  source {k} ({source}): {100 * mean:.2f} % of the pixels on average')
