"""``desra demo``: the whole DeSRA loop on the bundled real-photo corpus with the project's small demo models.

Following the paper's protocol (section 4.1), the GAN-SR model is fine-tuned on the corpus's fine-tune set and
judged on its held-out set, photos the fine-tune never sees: MSE-SR and GAN-SR inference, DeSRA-det, pseudo-GT,
a DeSRA fine-tune on the CPU (``desra_basicsr/train.py``, ``DeSRAFinetuneModel``), inference with the fine-tuned
model and detection again on both sets, then the paper-style table (removal rate, addition rate, detected area
before/after), the detail kept outside the artifact masks, and the visual report of the held-out photos. No
download, no GPU. Semantics are off unless a SegFormer ADE20K checkpoint is given with ``--seg-checkpoint``.
Resumable: run the same command again to continue. Needs the source checkout (options/, demo_data/,
experiments/pretrained_models/). See :mod:`desra_basicsr.demo`.
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
        help='run the whole DeSRA loop on the bundled real photos (README main command: make demo)',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='demo_output', help='output folder (default: demo_output)')
    parser.add_argument('--iters', type=int, default=defaults.iters, help='DeSRA fine-tune iterations')
    parser.add_argument('--seed', type=int, default=defaults.seed, help='manual_seed of the fine-tune')
    parser.add_argument('--finetune-input', default=defaults.finetune_input, help='LR photos the fine-tune uses')
    parser.add_argument('--heldout-input', default=defaults.heldout_input, help='LR photos it is judged on')
    parser.add_argument('--finetune-options', default=defaults.finetune_options, help='fine-tune option template')
    parser.add_argument('--mse-weights', default=defaults.mse_weights, help='MSE-SR generator weights')
    parser.add_argument('--gan-weights', default=defaults.gan_weights, help='GAN-SR generator weights')
    parser.add_argument('--netd-weights', default=defaults.netd_weights, help='GAN-SR discriminator weights')
    parser.add_argument('--seg-checkpoint', help='SegFormer ADE20K checkpoint: turns semantics on (default: off)')
    parser.add_argument('--seg-config', help='mmseg config of --seg-checkpoint (default: mit-b5 ADE20K 640x640)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``desra demo``.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: 0 on success, 1 when a stage failed, 2 for unusable arguments.
    """
    from desra_basicsr.commands import run_job_command
    from desra_basicsr.demo import DemoSettings, run_demo

    if args.seg_config and not args.seg_checkpoint:
        print('error: --seg-config: needs --seg-checkpoint', file=sys.stderr)
        return 2
    settings = DemoSettings(
        finetune_input=args.finetune_input,
        heldout_input=args.heldout_input,
        iters=args.iters,
        seed=args.seed,
        finetune_options=args.finetune_options,
        mse_weights=args.mse_weights,
        gan_weights=args.gan_weights,
        netd_weights=args.netd_weights,
        seg_checkpoint=args.seg_checkpoint,
        seg_config=args.seg_config,
        device=args.device)
    return run_job_command(lambda: run_demo(args.out, settings))
