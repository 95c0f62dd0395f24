"""The whole DeSRA loop on the bundled held-out LR photos with the project-trained demo models (``desra demo``).

Stages, each one a ``desra`` command (so the demo shows exactly what a user runs) writing into ``--out``:

1. ``desra sr`` with the MSE-SR model -> ``sr_mse/``; with the GAN-SR model -> ``sr_gan/``;
2. ``desra detect`` (GAN-SR against MSE-SR) -> ``masks_before/``;
3. ``desra pseudo-gt`` (eq. 10) -> ``pseudo_gt/`` (for the report; the fine-tune merges on the fly);
4. DeSRA fine-tune of the GAN-SR model and its discriminator through ``desra_basicsr/train.py`` with
   ``DeSRAFinetuneModel`` and ``PseudoGTPairedDataset`` (options: ``options/finetune_desra.yml`` written from the
   template ``options/demo_finetune_desra.yml``; run folder ``experiments/demo_finetune_desra/``);
5. ``desra sr`` with the fine-tuned model -> ``sr_finetuned/``; ``desra detect`` again -> ``masks_after/``;
6. ``desra compare`` (detected area before/after, removal rate, addition rate: the paper's Table 3) ->
   ``compare.json``; ``desra report`` -> ``report/index.html``.

Every stage is resumable (completed outputs are kept), so an interrupted demo continues where it stopped; the
settings of a run are stored in ``demo_settings.json`` and a folder made with other settings is refused.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

import yaml

from desra_basicsr.errors import DesraInputError
from desra_basicsr.utils import atomic_write_path

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PRETRAINED = osp.join(REPO_ROOT, 'experiments', 'pretrained_models')
MSE_OPT = osp.join(REPO_ROOT, 'options', 'demo_train_mse.yml')
GAN_OPT = osp.join(REPO_ROOT, 'options', 'demo_train_gan.yml')
FINETUNE_TEMPLATE = osp.join(REPO_ROOT, 'options', 'demo_finetune_desra.yml')
SEGFORMER_CHECKPOINT = 'segformer_mit-b5_640x640_160k_ade20k_20210801_121243-41d2845b.pth'
SEMANTICS_OFF = (
    'notice: semantics are OFF: no SegFormer ADE20K checkpoint was given, so every class weight is 1 (the paper\'s '
    '"without semantics" ablation). To turn them on, download the mmsegmentation checkpoint\n'
    f'  {SEGFORMER_CHECKPOINT}\n'
    '(SegFormer mit-b5, ADE20K, 640x640; its URL is in mmseg\'s configs/segformer/metafile.yaml) and pass\n'
    '  desra demo --seg-checkpoint PATH/TO/segformer.pth [--seg-config CONFIG.py]  '
    '(default config: the mit-b5 640x640 one shipped with mmseg)')


@dataclass
class DemoSettings:
    """What a demo run uses; stored in ``<out>/demo_settings.json``.

    Attributes:
        input (str): Folder of held-out LR photos.
        iters (int): DeSRA fine-tune iterations.
        mse_weights (str): MSE-SR generator weights.
        gan_weights (str): GAN-SR generator weights.
        netd_weights (str): GAN-SR discriminator weights.
        seg_checkpoint (str | None): SegFormer ADE20K checkpoint (semantics on) or None (off).
        seg_config (str | None): mmseg config for the checkpoint (None: mmseg's mit-b5 ADE20K 640x640).
        device (str): ``cpu`` or ``cuda``.
    """
    input: str = osp.join(REPO_ROOT, 'demo_data', 'heldout_lr')
    iters: int = 300
    mse_weights: str = osp.join(PRETRAINED, 'demo_mse_x4.pth')
    gan_weights: str = osp.join(PRETRAINED, 'demo_gan_x4.pth')
    netd_weights: str = osp.join(PRETRAINED, 'demo_gan_x4_netD.pth')
    seg_checkpoint: Optional[str] = None
    seg_config: Optional[str] = None
    device: str = 'cpu'

    def absolute(self) -> 'DemoSettings':
        """A copy with every path made absolute (the fine-tune runs in another working directory)."""
        paths = {
            k: osp.abspath(v)
            for k, v in asdict(self).items()
            if k in ('input', 'mse_weights', 'gan_weights', 'netd_weights', 'seg_checkpoint', 'seg_config') and v
        }
        return DemoSettings(**{**asdict(self), **paths})


def check_settings(settings: DemoSettings) -> None:
    """Check the demo's inputs exist before any stage runs.

    Args:
        settings (DemoSettings): The settings.

    Raises:
        DesraInputError: Naming the first missing file or the bad value.
    """
    if settings.iters < 1:
        raise DesraInputError(f'--iters {settings.iters}: must be at least 1')
    if not osp.isdir(settings.input):
        raise DesraInputError(f'{settings.input}: folder of held-out LR photos not found')
    for path in (settings.mse_weights, settings.gan_weights, settings.netd_weights, FINETUNE_TEMPLATE, MSE_OPT, GAN_OPT,
                 settings.seg_checkpoint, settings.seg_config):
        if path and not osp.isfile(path):
            raise DesraInputError(f'{path}: file not found')


def _claim_output(out: str, settings: DemoSettings) -> None:
    """Record the settings in ``out``; refuse a folder holding a run with other settings."""
    path = osp.join(out, 'demo_settings.json')
    wanted = asdict(settings)
    if osp.isfile(path):
        with open(path, 'r') as f:
            previous = json.load(f)
        if previous != wanted:
            changed = ', '.join(sorted(k for k in wanted if previous.get(k) != wanted[k]))
            raise DesraInputError(f'{path}: this folder holds a demo run with other settings ({changed}); '
                                  'delete the folder or choose another --out')
        return
    with atomic_write_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(wanted, f, indent=2)


def write_finetune_options(settings: DemoSettings, folders: Dict[str, str], path: str) -> dict:
    """Write the fine-tune option file: the template with this run's data, weights and iterations.

    Args:
        settings (DemoSettings): Absolute-path settings.
        folders (dict): Absolute stage folders (``sr_mse``, ``sr_gan``, ``masks_before``).
        path (str): Where the option file is written.

    Returns:
        dict: The options written.
    """
    with open(FINETUNE_TEMPLATE, 'r') as f:
        opt = yaml.safe_load(f)
    train = opt['datasets']['train']
    train.update(
        dataroot_lq=settings.input,
        dataroot_mse=folders['sr_mse'],
        dataroot_gan=folders['sr_gan'],
        dataroot_mask=folders['masks_before'])
    opt['path'].update(pretrain_network_g=settings.gan_weights, pretrain_network_d=settings.netd_weights)
    opt['train']['total_iter'] = settings.iters
    if settings.device.startswith('cuda'):
        opt['num_gpu'] = 1
    with atomic_write_path(path) as tmp:
        with open(tmp, 'w') as f:
            f.write(f'# written by `desra demo` from {FINETUNE_TEMPLATE}\n')
            yaml.safe_dump(opt, f, sort_keys=False)
    return opt


class DemoError(RuntimeError):
    """A stage of the demo failed (its command printed why)."""


def _command(argv: List[str]) -> None:
    from desra_basicsr.commands import main
    print(f'\n$ desra {" ".join(argv)}', flush=True)
    code = main(argv)
    if code != 0:
        raise DemoError(f'`desra {argv[0]}` failed with exit code {code}')


def _train(opt_path: str, workdir: str, log_path: str) -> None:
    """Run ``desra_basicsr/train.py`` in ``workdir``; progress lines are shown, the whole log is kept."""
    cmd = [sys.executable, '-m', 'desra_basicsr.train', '-opt', opt_path, '--auto_resume']
    print(f'\n$ (cd {workdir} && python -m desra_basicsr.train -opt {opt_path} --auto_resume)  '
          f'# log: {log_path}',
          flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get('PYTHONPATH')])))
    with open(log_path, 'a') as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail: List[str] = []
        for line in proc.stdout:
            log.write(line)
            tail = (tail + [line])[-25:]
            if '[epoch:' in line or 'End of training' in line:
                print('  ' + line.split('INFO: ')[-1].rstrip(), flush=True)
        code = proc.wait()
    if code != 0:
        sys.stderr.write(''.join(tail))
        raise DemoError(f'fine-tuning failed with exit code {code} (log: {log_path})')


def run_demo(out: str, settings: DemoSettings) -> Dict:
    """Run the whole loop (see the module docstring) and print the paper-style table.

    Args:
        out (str): Output folder.
        settings (DemoSettings): Inputs, weights, fine-tune iterations, segmentation and device.

    Returns:
        dict: ``desra compare``'s summary plus ``per_image``, stage ``seconds``, ``semantics`` and ``report``.

    Raises:
        DesraInputError: For missing inputs or an output folder holding another run.
        DemoError: When a stage fails.
    """
    settings = settings.absolute()
    check_settings(settings)
    out = osp.abspath(out)
    os.makedirs(out, exist_ok=True)
    _claim_output(out, settings)
    folders = {
        k: osp.join(out, k)
        for k in ('sr_mse', 'sr_gan', 'masks_before', 'pseudo_gt', 'sr_finetuned', 'masks_after', 'report')
    }
    semantics = bool(settings.seg_checkpoint)
    print(f'DeSRA demo: {settings.input} -> {out}; fine-tune {settings.iters} iterations on {settings.device}')
    print('semantics: ON (' + settings.seg_checkpoint + ')' if semantics else SEMANTICS_OFF, flush=True)
    seg_flags = []
    if semantics:
        seg_flags = ['--semantic', 'mmseg', '--seg-checkpoint', settings.seg_checkpoint]
        seg_flags += ['--seg-config', settings.seg_config] if settings.seg_config else []
    seconds: Dict[str, float] = {}

    def stage(name: str, fn, *args) -> None:
        start = time.time()
        fn(*args)
        seconds[name] = round(time.time() - start, 1)

    sr = ['--input', settings.input, '--device', settings.device]
    stage('sr_mse', _command,
          ['sr', '--opt', MSE_OPT, '--weights', settings.mse_weights, '--out', folders['sr_mse']] + sr)
    stage('sr_gan', _command,
          ['sr', '--opt', GAN_OPT, '--weights', settings.gan_weights, '--out', folders['sr_gan']] + sr)
    detect = ['--mse', folders['sr_mse'], '--device', settings.device] + seg_flags
    stage('detect_before', _command, ['detect', '--gan', folders['sr_gan'], '--out', folders['masks_before']] + detect)
    stage('pseudo_gt', _command, [
        'pseudo-gt', '--mse', folders['sr_mse'], '--gan', folders['sr_gan'], '--masks', folders['masks_before'],
        '--out', folders['pseudo_gt']
    ])

    opt_path = osp.join(out, 'options', 'finetune_desra.yml')
    opt = write_finetune_options(settings, folders, opt_path)
    weights = osp.join(out, 'experiments', opt['name'], 'models', 'net_g_latest.pth')
    if osp.isfile(weights):
        print(f'\nfine-tune: {weights} exists, skipped')
    else:
        stage('finetune', _train, opt_path, out, osp.join(out, 'finetune.log'))
    stage('sr_finetuned', _command,
          ['sr', '--opt', opt_path, '--weights', weights, '--out', folders['sr_finetuned']] + sr)
    stage('detect_after', _command,
          ['detect', '--gan', folders['sr_finetuned'], '--out', folders['masks_after']] + detect)
    compare_json = osp.join(out, 'compare.json')
    stage('compare', _command,
          ['compare', '--before', folders['masks_before'], '--after', folders['masks_after'], '--json', compare_json])
    stage('report', _command, [
        'report', '--out', folders['report'], '--lr', settings.input, '--mse', folders['sr_mse'], '--gan',
        folders['sr_gan'], '--masks', folders['masks_before'], '--pseudo-gt', folders['pseudo_gt'], '--finetuned',
        folders['sr_finetuned'], '--finetuned-masks', folders['masks_after'], '--title',
        f'DeSRA demo ({settings.iters} fine-tune iterations)'
    ])
    with open(compare_json, 'r') as f:
        compared = json.load(f)
    result = dict(
        compared['summary'],
        per_image=compared['per_image'],
        seconds=seconds,
        semantics=semantics,
        report=osp.join(folders['report'], 'index.html'))
    print_table(result, settings)
    return result


def format_demo_table(result: Dict) -> str:
    """The demo's closing table: per held-out photo and overall, detected artifact area before/after fine-tuning
    (percent of the SR image), regions removed, and the data-set removal and addition rates.

    Args:
        result (dict): As returned by :func:`run_demo`.

    Returns:
        str: The table, one line per row.
    """
    lines = [f'{"image":<16}{"area before %":>15}{"area after %":>14}{"regions":>9}{"removed":>9}{"new artifacts":>15}']
    for name, row in sorted(result['per_image'].items()):
        lines.append(f'{name:<16}{row["area_before"]:>15.2f}{row["area_after"]:>14.2f}{row["n_regions_before"]:>9d}'
                     f'{row["n_removed"]:>9d}{"yes" if row["added"] else "no":>15}')
    lines.append(f'{"mean / total":<16}{result["area_before"]:>15.2f}{result["area_after"]:>14.2f}'
                 f'{result["n_regions_before"]:>9d}{result["n_removed"]:>9d}{result["images_with_additions"]:>15d}')
    removal = f'{result["removal_rate"]:.2f} %' if result['n_regions_before'] else 'n/a (nothing detected before)'
    lines.append(f'removal rate: {removal}   addition rate: {result["addition_rate"]:.2f} % '
                 f'({result["images_with_additions"]} of {result["images"]} images gained artifacts)')
    return '\n'.join(lines)


def print_table(result: Dict, settings: DemoSettings) -> None:
    """Print the closing table, the semantics state and where the report is."""
    print('\n=== DeSRA demo: GAN-SR artifacts before and after the DeSRA fine-tune (held-out photos) ===')
    print(format_demo_table(result))
    print(f'semantics: {"on" if result["semantics"] else "off (no SegFormer checkpoint; see the notice above)"}; '
          f'fine-tune: {settings.iters} iterations')
    print('stage seconds: ' + ', '.join(f'{k} {v}' for k, v in result['seconds'].items()))
    print(f'visual report: {result["report"]}')
