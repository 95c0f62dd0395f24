"""``desra demo``: the whole DeSRA loop on the bundled real-photo corpus with the project's small demo models.

``desra loop`` with one preset (:func:`desra_basicsr.demo.loop_settings`): following the paper's protocol (section
4.1), the GAN-SR model is fine-tuned on the corpus's fine-tune set (the one batch) and judged on its held-out set
(``--heldout``), photos the fine-tune never sees: MSE-SR and GAN-SR inference, DeSRA-det, pseudo-GT, a DeSRA
fine-tune of a fixed 500 iterations on the CPU (:mod:`desra_basicsr.jobs.finetune`), inference with the
fine-tuned model and detection again on both sets, then the paper-style table (removal rate, addition rate,
detected area before/after), the detail kept outside the artifact masks, and the visual report of the held-out
photos. No download, no GPU. Semantics are off unless a SegFormer ADE20K checkpoint is given with
``--seg-checkpoint``. Resumable: run the same command again to continue. Needs the source checkout (options/,
demo_data/, experiments/pretrained_models/). See :mod:`desra_basicsr.demo`.
"""
import argparse

from desra_basicsr.commands import add_setting_arguments
from desra_basicsr.settings import default_of


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    from desra_basicsr.demo import DemoSettings
    parser = subparsers.add_parser(
        'demo',
        help='run the whole DeSRA loop on the bundled real photos (README main command: make demo)',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='demo_output', help='output folder (default: demo_output)')
    add_setting_arguments(
        parser, DemoSettings, {
            'iters': 'DeSRA fine-tune iterations',
            'seed': 'manual_seed of the fine-tune',
            'finetune_input': 'LR photos the fine-tune uses',
            'heldout_input': 'LR photos it is judged on',
            'finetune_options': 'fine-tune option template',
            'mse_weights': 'MSE-SR generator weights',
            'gan_weights': 'GAN-SR generator weights',
            'netd_weights': 'GAN-SR discriminator weights',
        })
    parser.add_argument('--seg-checkpoint', help='SegFormer ADE20K checkpoint: turns semantics on (default: off)')
    parser.add_argument('--seg-config', help='mmseg config of --seg-checkpoint (default: mit-b5 ADE20K 640x640)')
    parser.add_argument('--device', default=default_of(DemoSettings, 'device'), help='cpu, cuda or cuda:N')
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
    from desra_basicsr.settings import settings_from_args

    return run_job_command(lambda: run_demo(args.out, settings_from_args(DemoSettings, args)))
