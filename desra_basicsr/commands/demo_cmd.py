"""``desra demo``: the whole DeSRA loop on bundled held-out LR photos with the project's small demo models.

MSE-SR and GAN-SR inference (``desra sr``), detection (``desra detect``), pseudo-GT (``desra pseudo-gt``), a DeSRA
fine-tune of the GAN-SR model on the CPU (``desra_basicsr/train.py``, ``DeSRAFinetuneModel``), inference with the
fine-tuned model, detection again, the paper-style table (``desra compare``) and the visual report
(``desra report``). No download, no GPU. Semantics are off unless a SegFormer ADE20K checkpoint is given with
``--seg-checkpoint``. Resumable: run the same command again to continue. See :mod:`desra_basicsr.demo`.
"""
import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    from desra_basicsr.demo import DemoSettings
    defaults = DemoSettings()
    parser = subparsers.add_parser(
        'demo',
        help='run the whole DeSRA loop on bundled held-out photos (README main command: make demo)',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='demo_output', help='output folder (default: demo_output)')
    parser.add_argument('--iters', type=int, default=defaults.iters, help='DeSRA fine-tune iterations')
    parser.add_argument('--input', default=defaults.input, help='folder of held-out LR photos')
    parser.add_argument('--mse-weights', default=defaults.mse_weights, help='MSE-SR generator weights')
    parser.add_argument('--gan-weights', default=defaults.gan_weights, help='GAN-SR generator weights')
    parser.add_argument('--netd-weights', default=defaults.netd_weights, help='GAN-SR discriminator weights')
    parser.add_argument('--seg-checkpoint', help='SegFormer ADE20K checkpoint: turns semantics on (default: off)')
    parser.add_argument('--seg-config', help='mmseg config of --seg-checkpoint (default: mit-b5 ADE20K 640x640)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``desra demo``.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: 0 on success, 1 when a stage failed, 2 for unusable arguments.
    """
    from desra_basicsr.demo import DemoError, DemoSettings, run_demo
    from desra_basicsr.errors import DesraInputError

    if args.seg_config and not args.seg_checkpoint:
        print('error: --seg-config: needs --seg-checkpoint', file=sys.stderr)
        return 2
    settings = DemoSettings(
        input=args.input,
        iters=args.iters,
        mse_weights=args.mse_weights,
        gan_weights=args.gan_weights,
        netd_weights=args.netd_weights,
        seg_checkpoint=args.seg_checkpoint,
        seg_config=args.seg_config,
        device=args.device)
    try:
        run_demo(args.out, settings)
    except DesraInputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    except DemoError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0
