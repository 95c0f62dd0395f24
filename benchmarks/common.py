"""What the benchmarks share: the repository path, speed ratios, synthetic SR pairs, the fine-tune options, the
one way to measure a child process's peak memory, atomic JSON output, argument checks and the handler of bad input
(:func:`run_main`).

The benchmarks are modules of this package; run them from the repository root (``make bench`` and the other
``bench-*`` targets do), e.g. ``.venv/bin/python -m benchmarks.bench_detect``.
"""
import os
import os.path as osp
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Mapping, NoReturn, Optional, Tuple

import cv2
import numpy as np
import yaml

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.evaluation.folders import write_json  # noqa: F401  (the benchmarks' atomic JSON output)
from desra_basicsr.image_io import list_images, read_image, write_image
from desra_basicsr.utils import atomic_write_path

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The DeSRA fine-tune of Real-ESRGAN x4plus, whose training section the fine-tune benchmarks run.
REALESRGAN_OPTIONS = osp.join(REPO, 'options', 'finetune_realesrgan_desra.yml')
#: Photos of scikit-image the synthetic pairs are made from.
PAIR_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket')

# Runs `desra ARGS` (argv[1] == 'desra') or the script argv[1] with the arguments after it, and prints at exit the
# seconds since the start, the RSS at the start, the peak RSS and the peak CUDA memory. The peak RSS is VmHWM of
# /proc/self/status: getrusage's ru_maxrss survives fork + exec on Linux, so a child would report its parent's peak.
PEAK_RUNNER = '''
import atexit, runpy, sys, time
def rss_kb(field):
    return int([line.split()[1] for line in open('/proc/self/status') if line.startswith(field)][0])
start_kb, start = rss_kb('VmRSS:'), time.perf_counter()
def report():
    torch = sys.modules.get('torch')
    cuda = torch.cuda.max_memory_allocated() if torch is not None and torch.cuda.is_initialized() else 0
    print('PEAK_RUNNER', time.perf_counter() - start, start_kb, rss_kb('VmHWM:'), cuda, flush=True)
atexit.register(report)
sys.argv = sys.argv[1:]
if sys.argv[0] == 'desra':
    from desra_basicsr.commands import main
    sys.exit(main(sys.argv[1:]))
runpy.run_path(sys.argv[0], run_name='__main__')
'''


@dataclass
class Measured:
    """A child process run by :func:`run_measured`.

    Attributes:
        returncode (int): Its exit code.
        output (str): Its stdout and stderr together.
        seconds (float | None): Seconds from the start of the command to its exit (None: it died before the end).
        start_mib (float | None): RSS at the start, before the command imported anything.
        peak_mib (float | None): Peak RSS (``VmHWM``).
        peak_cuda_gib (float | None): Peak CUDA memory allocated by torch (0 without CUDA).
    """
    returncode: int
    output: str
    seconds: Optional[float] = None
    start_mib: Optional[float] = None
    peak_mib: Optional[float] = None
    peak_cuda_gib: Optional[float] = None


def run_measured(argv: List[str], cwd: str = REPO, env: Optional[Mapping[str, str]] = None) -> Measured:
    """Run ``desra ARGS`` (``argv[0] == 'desra'``) or a Python script in a child process and measure its memory.

    Args:
        argv (list[str]): ``['desra', ...]`` or ``[script, ...]``.
        cwd (str): Working directory of the child.
        env (Mapping | None): Its environment (default: this process's).

    Returns:
        Measured: Exit code, output and figures.
    """
    proc = subprocess.run([sys.executable, '-c', PEAK_RUNNER, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    measured = Measured(proc.returncode, proc.stdout)
    lines = [line.split() for line in proc.stdout.splitlines() if line.startswith('PEAK_RUNNER ')]
    if lines:
        seconds, start_kb, peak_kb, cuda = lines[-1][1:]
        measured.seconds, measured.start_mib = float(seconds), int(start_kb) / 1024
        measured.peak_mib, measured.peak_cuda_gib = int(peak_kb) / 1024, int(cuda) / 2**30
    return measured


def run_desra_measured(args: List[str]) -> Measured:
    """:func:`run_measured` of ``desra ARGS``, from the repository.

    Args:
        args (list[str]): The command's arguments.

    Returns:
        Measured: Its figures.

    Raises:
        RuntimeError: If the command failed (with the end of its output).
    """
    measured = run_measured(['desra', *args])
    if measured.returncode != 0:
        raise RuntimeError(f'desra {" ".join(args)} failed:\n{measured.output[-2000:]}')
    return measured


def ratio(value: float, baseline: float, digits: int = 2) -> str:
    """``value / baseline`` as ``'1.23x'``.

    Args:
        value (float): The measured figure.
        baseline (float): The baseline's figure, measured in the same process.
        digits (int): Decimals.

    Returns:
        str: The ratio.
    """
    return f'{value / baseline:.{digits}f}x'


def best_time(fn: Callable[[], Any], repeat: int = 3) -> Tuple[float, float, Any]:
    """Time ``fn()`` ``repeat`` times.

    Args:
        fn (Callable): What to time.
        repeat (int): Runs.

    Returns:
        tuple: The best wall time, the best CPU time (all threads of this process; steadier on a shared machine),
        and the last run's result.
    """
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return min(walls), min(cpus), out


def timed(fn: Callable[[], Any]) -> Tuple[Any, float]:
    """Run ``fn()`` once.

    Args:
        fn (Callable): What to time.

    Returns:
        tuple: ``fn()``'s result and the wall seconds it took.
    """
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def photo_pair(size: int, name: str = 'astronaut', seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A realistic-looking SR pair: MSE-SR = smooth upscale of a photo, GAN-SR = sharpened upscale + fine noise.

    Args:
        size (int): Side of the square images.
        name (str): scikit-image photo.
        seed (int): Noise seed.

    Returns:
        tuple: ``(mse, gan)``, ``size x size x 3`` uint8 BGR.
    """
    from skimage import data
    photo = np.ascontiguousarray(getattr(data, name)()[:, :, :3][:, :, ::-1])
    mse = cv2.resize(photo, (size, size), interpolation=cv2.INTER_CUBIC)
    sharp = cv2.addWeighted(mse, 1.8, cv2.GaussianBlur(mse, (0, 0), 2), -0.8, 0)
    noise = np.random.default_rng(seed).normal(0, 6, mse.shape)
    return mse, np.clip(sharp + noise, 0, 255).astype(np.uint8)


def write_pairs(root: str, size: int, count: int) -> Tuple[str, str]:
    """Write ``count`` :func:`photo_pair` pairs as ``root/mse/NNN.png`` and ``root/gan/NNN.png``.

    Args:
        root (str): Folder (created).
        size (int): Image side.
        count (int): Number of pairs (the photos repeat with other noise).

    Returns:
        tuple: The MSE-SR and GAN-SR folders.
    """
    mse_dir, gan_dir = osp.join(root, 'mse'), osp.join(root, 'gan')
    os.makedirs(mse_dir)
    os.makedirs(gan_dir)
    for i in range(count):
        mse, gan = photo_pair(size, PAIR_PHOTOS[i % len(PAIR_PHOTOS)], seed=i)
        cv2.imwrite(osp.join(mse_dir, f'{i:03d}.png'), mse)
        cv2.imwrite(osp.join(gan_dir, f'{i:03d}.png'), gan)
    return mse_dir, gan_dir


def realesrgan_finetune_options() -> dict:
    """``options/finetune_realesrgan_desra.yml`` as a dict (the benchmarks change sizes, data and schedule).

    Returns:
        dict: The options.
    """
    with open(REALESRGAN_OPTIONS, 'r') as f:
        return yaml.safe_load(f)


def checked(result):
    """Stop the benchmark when a ``desra`` job failed on some image (a :class:`~desra_basicsr.jobs.core.JobResult`).

    Returns:
        The result itself, when nothing failed.
    """
    if getattr(result, 'failed', 0):
        errors = {k: v.get('message') for k, v in result.items.items() if v.get('status') == 'error'}
        raise SystemExit(f'{result.summary["meta"]["command"]} failed: {errors}')
    return result


def colour_fixed(folder: str, lr_dir: str, sigma: float, out: str) -> str:
    """``out``, holding every image of ``folder`` with the colour fix from its LR image (the fix ``desra fuse --lr``
    applies to each candidate)."""
    from desra_basicsr.detection.colour_fix import colour_fix
    os.makedirs(out, exist_ok=True)
    for name in list_images(folder):
        fixed = colour_fix(read_image(osp.join(folder, name)), read_image(osp.join(lr_dir, name)), sigma)
        write_image(osp.join(out, name), fixed)
    return out


def write_text(path: str, text: str) -> str:
    """Write ``text`` to ``path`` atomically: a reader sees the old file or the whole new one.

    Args:
        path (str): The file (its folder is created).
        text (str): Its content.

    Returns:
        str: ``path``.
    """
    with atomic_write_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
    return path


def check_counts(args: Any, *options: str, least: int = 1) -> None:
    """Refuse a count option below ``least`` before any work.

    Args:
        args (argparse.Namespace): Parsed arguments.
        *options (str): Option names as the user types them (``'--pairs'``); an option left at None is skipped.
        least (int): The smallest usable value.

    Raises:
        DesraSettingsError: Naming the first option below ``least``.
    """
    for option in options:
        value = getattr(args, option.lstrip('-').replace('-', '_'))
        if value is not None and value < least:
            raise DesraSettingsError(f'{option} {value}: give a number >= {least}')


def check_paths(paths: Iterable[Tuple[str, Optional[str]]], kind: str = 'file') -> None:
    """Refuse a missing file or folder given on the command line before any work.

    Args:
        paths (Iterable[tuple]): ``(option, path)`` pairs; a path of None (option not given) is skipped.
        kind (str): ``'file'`` or ``'folder'``.

    Raises:
        DesraSettingsError: Naming the option and the first path that is not there.
    """
    exists = osp.isfile if kind == 'file' else osp.isdir
    for option, path in paths:
        if path is not None and not exists(path):
            raise DesraSettingsError(f'{option} {path}: no such {kind}')


#: Job messages that name options of the ``desra`` commands a benchmark does not have, and their rewording.
_JOB_WORDING = (
    (re.compile(r', or --overwrite to compute (every output|them) again'), ''),
    (re.compile(r' and --overwrite will not replace them'), ' and will not be replaced'),
    (re.compile(r', not even with --overwrite'), ''),
)


def benchmark_message(message: str, out_option: str = '--work') -> str:
    """A job's error message reworded for a benchmark, which has no ``--overwrite`` and names its output folder
    ``out_option``.

    Args:
        message (str): The message of a :class:`~desra_basicsr.errors.DesraInputError`.
        out_option (str): The benchmark's output-folder option (every job folder lies under it).

    Returns:
        str: The message, with ``--overwrite`` advice dropped and ``another --out`` naming ``out_option``.
    """
    for pattern, replacement in _JOB_WORDING:
        message = pattern.sub(replacement, message)
    return message.replace('another --out', f'another {out_option}')


def run_main(main: Callable[[], Any], out_option: str = '--work') -> NoReturn:
    """Run a benchmark's ``main()`` as a script: bad input ends with one line ``error: ...`` on stderr, no traceback.

    Unusable settings (:class:`~desra_basicsr.errors.DesraSettingsError`) exit with 2, any other
    :class:`~desra_basicsr.errors.DesraInputError` with 1, as the ``desra`` commands do; a ``SystemExit`` with a
    message exits with 1 after ``error: MESSAGE``. An integer ``main()`` returns is the exit code (anything else: 0).

    Args:
        main (Callable): The benchmark's entry point, reading ``sys.argv``.
        out_option (str): The benchmark's output-folder option, named in place of the jobs' ``--out``.
    """
    try:
        code = main()
    except DesraInputError as err:
        print(f'error: {benchmark_message(str(err), out_option)}', file=sys.stderr)
        sys.exit(2 if isinstance(err, DesraSettingsError) else 1)
    except SystemExit as err:
        if not isinstance(err.code, str):
            raise
        message = err.code if err.code.startswith('error: ') else f'error: {err.code}'
        print(message, file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)
