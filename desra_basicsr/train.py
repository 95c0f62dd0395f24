"""Training entry point: BasicSR's ``train_pipeline`` with the plugin's components registered.

Usage (from the repository root, as with Real-ESRGAN's ``realesrgan/train.py``)::

    python desra_basicsr/train.py -opt options/finetune_realesrgan_desra.yml [--auto_resume]
    python -m torch.distributed.run --nproc_per_node=4 desra_basicsr/train.py \\
        -opt options/finetune_realesrgan_desra.yml --launcher pytorch [--auto_resume]

Any BasicSR option file works, ours or the user's own. Runs are written to ``experiments/<name>/`` under the
current working directory, the same place ``--auto_resume`` looks for training states.
"""
import os
import sys
from typing import List, Optional

import yaml

import desra_basicsr  # noqa: F401  (applies the compat fixes and registers the plugin's components)
from basicsr.train import train_pipeline
from desra_basicsr.compat import DIST_BACKEND_ENV


def _option_value(argv: List[str], flag: str) -> Optional[str]:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + '='):
            return arg.split('=', 1)[1]
    return None


def prepare_argv(argv: List[str]) -> List[str]:
    """Make the command line acceptable to BasicSR's parser and export the option file's dist backend.

    * ``torch.distributed.launch`` on torch 2.x passes ``--local-rank``; BasicSR's parser only knows
      ``--local_rank``.
    * ``dist_params.backend`` in the option file (BasicSR only honours it for slurm) is exported as
      ``$DESRA_DIST_BACKEND`` for the pytorch launcher; without it, nccl is used on GPUs and gloo on CPU.

    Args:
        argv (list[str]): Command-line arguments without the program name.

    Returns:
        list[str]: Arguments for BasicSR's parser.
    """
    argv = [('--local_rank' + arg[len('--local-rank'):]) if arg.startswith('--local-rank') else arg for arg in argv]
    opt_path = _option_value(argv, '-opt')
    if opt_path and os.path.isfile(opt_path):
        with open(opt_path, 'r') as f:
            opt = yaml.safe_load(f) or {}
        backend = (opt.get('dist_params') or {}).get('backend')
        if backend:
            os.environ.setdefault(DIST_BACKEND_ENV, backend)
    return argv


def main() -> None:
    """Run BasicSR's training pipeline rooted at the current working directory."""
    sys.argv[1:] = prepare_argv(sys.argv[1:])
    train_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
