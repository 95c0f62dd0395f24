"""The whole DeSRA loop on the bundled real-photo corpus with the project-trained demo models (``desra demo``).

It follows the paper's protocol (section 4.1): the GAN-SR model is fine-tuned on one set of real LR photos (the
*fine-tune set*, ``demo_data/finetune_lr/``) and judged on photos the fine-tune never saw (the *held-out set*,
``demo_data/heldout_lr/``); see :mod:`desra_basicsr.demo_corpus` for the corpus and its split. Stages, each one
a job of the Python API under the ``desra`` commands (:mod:`desra_basicsr.jobs`), writing into ``--out``:

1. for both sets: MSE-SR and GAN-SR inference (``<set>/sr_mse/``, ``<set>/sr_gan/``) and DeSRA-det
   (``<set>/masks_before/``);
2. pseudo-GT of the fine-tune set (eq. 10, ``finetune/pseudo_gt/``, shown in the report; the fine-tune merges on
   the fly);
3. the DeSRA fine-tune of the GAN-SR model and its discriminator on the fine-tune set only, through
   ``desra_basicsr/train.py`` (``DeSRAFinetuneModel``, ``PseudoGTPairedDataset``; options
   ``options/finetune_desra.yml`` written from the template ``options/demo_finetune_desra.yml``; run folder
   ``experiments/demo_finetune_desra/``);
4. for both sets: inference with the fine-tuned model (``<set>/sr_finetuned/``) and DeSRA-det again
   (``<set>/masks_after/``);
5. for both sets: detected area before/after, removal and addition rates (the paper's Table 3,
   ``compare_<set>.json``) and how much GAN-SR detail survives outside the before-masks
   (:mod:`desra_basicsr.evaluation.detail`); the visual report of the held-out set (``report/index.html``).

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
from typing import Any, Callable, Dict, List, Optional, Tuple

import yaml

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.settings import Settings, setting
from desra_basicsr.utils import atomic_write_path

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PRETRAINED = osp.join(REPO_ROOT, 'experiments', 'pretrained_models')
DEMO_DATA = osp.join(REPO_ROOT, 'demo_data')
MSE_OPT = osp.join(REPO_ROOT, 'options', 'demo_train_mse.yml')
GAN_OPT = osp.join(REPO_ROOT, 'options', 'demo_train_gan.yml')
FINETUNE_TEMPLATE = osp.join(REPO_ROOT, 'options', 'demo_finetune_desra.yml')
SETS = ('heldout', 'finetune')
SET_TITLES = {'heldout': 'held-out set (never seen by the fine-tune)', 'finetune': 'fine-tune set'}
SEMANTICS_OFF = (
    'notice: semantics are OFF: no SegFormer ADE20K checkpoint was given, so every class weight is 1 (the paper\'s '
    '"without semantics" ablation). To turn them on, download the mmsegmentation checkpoint\n'
    '  {checkpoint}\n'
    '(SegFormer mit-b5, ADE20K, 640x640; its URL is in mmseg\'s configs/segformer/metafile.yaml) and pass\n'
    '  desra demo --seg-checkpoint PATH/TO/segformer.pth [--seg-config CONFIG.py]  '
    '(default config: the mit-b5 640x640 one shipped with mmseg)')


#: Most fine-tune iterations of a demo run.
MAX_ITERS = 100_000
#: Largest ``manual_seed``.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class DemoSettings(Settings):
    """What a demo run uses (paths made absolute: the fine-tune runs in another working directory); stored in
    ``<out>/demo_settings.json``.

    Attributes:
        finetune_input (str): Folder of the fine-tune set's real LR photos.
        heldout_input (str): Folder of the held-out set's real LR photos (never used for training).
        iters (int): DeSRA fine-tune iterations.
        seed (int): ``manual_seed`` of the fine-tune.
        finetune_options (str): Option file the fine-tune options are written from (the recipe).
        mse_weights (str): MSE-SR generator weights.
        gan_weights (str): GAN-SR generator weights.
        netd_weights (str): GAN-SR discriminator weights.
        seg_checkpoint (str | None): SegFormer ADE20K checkpoint (semantics on) or None (off).
        seg_config (str | None): mmseg config for the checkpoint (None: mmseg's mit-b5 ADE20K 640x640).
        device (str): ``cpu``, ``cuda`` or ``cuda:N``.
    """
    finetune_input: str = setting(osp.join(DEMO_DATA, 'finetune_lr'), kind='path')
    heldout_input: str = setting(osp.join(DEMO_DATA, 'heldout_lr'), kind='path')
    iters: int = setting(500, lo=1, hi=MAX_ITERS)
    seed: int = setting(0, lo=0, hi=MAX_SEED)
    finetune_options: str = setting(FINETUNE_TEMPLATE, kind='path')
    mse_weights: str = setting(osp.join(PRETRAINED, 'demo_mse_x4.pth'), kind='path')
    gan_weights: str = setting(osp.join(PRETRAINED, 'demo_gan_x4.pth'), kind='path')
    netd_weights: str = setting(osp.join(PRETRAINED, 'demo_gan_x4_netD.pth'), kind='path')
    seg_checkpoint: Optional[str] = setting(None, kind='path')
    seg_config: Optional[str] = setting(None, kind='path')
    device: str = setting('cpu', kind='device')

    def check(self) -> None:
        """A segmentation config comes with its checkpoint."""
        if self.seg_config and not self.seg_checkpoint:
            raise DesraSettingsError('--seg-config: needs --seg-checkpoint')

    def inputs(self) -> Dict[str, str]:
        """The LR folder of each set."""
        return {'heldout': self.heldout_input, 'finetune': self.finetune_input}


def check_settings(settings: DemoSettings) -> None:
    """Check the demo's inputs and device before any stage runs.

    Args:
        settings (DemoSettings): The settings.

    Raises:
        DesraSettingsError: Naming the first missing file, when the fine-tune set shares photos with the held-out set,
            when the device is not there, or when the package runs without the source checkout the demo needs.
    """
    from desra_basicsr.demo_corpus import check_disjoint
    from desra_basicsr.devices import resolve_device

    for path in (MSE_OPT, GAN_OPT, FINETUNE_TEMPLATE):
        if not osp.isfile(path):
            raise DesraSettingsError(f'{path} not found: `desra demo` needs the source checkout of desra-basicsr '
                                     '(its options/, demo_data/ and experiments/pretrained_models/ folders are not '
                                     'installed with the package); clone the repository and run `make demo` there')
    for name, folder in settings.inputs().items():
        if not osp.isdir(folder):
            raise DesraSettingsError(f'{folder}: folder of the {SET_TITLES[name]}\'s LR photos not found')
    for path in (settings.mse_weights, settings.gan_weights, settings.netd_weights, settings.finetune_options,
                 settings.seg_checkpoint, settings.seg_config):
        if path and not osp.isfile(path):
            raise DesraSettingsError(f'{path}: file not found')
    check_disjoint(settings.finetune_input, settings.heldout_input)
    resolve_device(settings.device)


def _claim_output(out: str, settings: DemoSettings) -> None:
    """Record the settings in ``out``; refuse a folder holding a run with other settings."""
    path = osp.join(out, 'demo_settings.json')
    wanted = asdict(settings)
    if osp.isfile(path):
        with open(path, 'r') as f:
            previous = json.load(f)
        if previous != wanted:
            changed = ', '.join(sorted(k for k in set(wanted) | set(previous) if previous.get(k) != wanted.get(k)))
            raise DesraSettingsError(f'{path}: this folder holds a demo run with other settings ({changed}); '
                                     'delete the folder or choose another --out')
        return
    with atomic_write_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(wanted, f, indent=2)


def write_finetune_options(settings: DemoSettings, folders: Dict[str, str], path: str) -> dict:
    """Write the fine-tune option file: the recipe with this run's data, weights, seed and iterations.

    Args:
        settings (DemoSettings): Absolute-path settings.
        folders (dict): Absolute folders of the fine-tune set (``sr_mse``, ``sr_gan``, ``masks_before``).
        path (str): Where the option file is written.

    Returns:
        dict: The options written.
    """
    with open(settings.finetune_options, 'r') as f:
        opt = yaml.safe_load(f)
    opt['datasets']['train'].update(
        dataroot_lq=settings.finetune_input,
        dataroot_mse=folders['sr_mse'],
        dataroot_gan=folders['sr_gan'],
        dataroot_mask=folders['masks_before'])
    opt['path'].update(pretrain_network_g=settings.gan_weights, pretrain_network_d=settings.netd_weights)
    opt['train']['total_iter'] = settings.iters
    opt['manual_seed'] = settings.seed
    if settings.device.startswith('cuda'):
        opt['num_gpu'] = 1
    with atomic_write_path(path) as tmp:
        with open(tmp, 'w') as f:
            f.write(f'# written by `desra demo` from {settings.finetune_options}\n')
            yaml.safe_dump(opt, f, sort_keys=False)
    return opt


class DemoError(DesraInputError):
    """A stage of the demo failed on some input (its job printed why); the commands exit with 1."""


def _job(name: str, result: Any) -> Any:
    """Fail the demo when a folder job had failed items; pass its result through otherwise."""
    if getattr(result, 'exit_code', 0):
        raise DemoError(f'stage {name}: {result.failed} item(s) failed (see {result.summary_path})')
    return result


def _train(opt_path: str, workdir: str, log_path: str, device: str) -> None:
    """Run ``desra_basicsr/train.py`` in ``workdir``; progress lines are shown, the whole log is kept."""
    cmd = [sys.executable, '-m', 'desra_basicsr.train', '-opt', opt_path, '--auto_resume']
    print(f'\n$ (cd {workdir} && python -m desra_basicsr.train -opt {opt_path} --auto_resume)  '
          f'# log: {log_path}',
          flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get('PYTHONPATH')])))
    if device.startswith('cuda:'):
        env['CUDA_VISIBLE_DEVICES'] = device.split(':', 1)[1]  # BasicSR trains on the first visible GPU
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


def measure_detail(folders: Dict[str, str]) -> Dict[str, Any]:
    """Detail kept outside the before-masks by the fine-tuned model, and by MSE-SR for reference.

    Args:
        folders (dict): Folders of one set (``sr_mse``, ``sr_gan``, ``sr_finetuned``, ``masks_before``).

    Returns:
        dict: ``std_ratio``, ``mad`` (fine-tuned against GAN-SR), ``mse_std_ratio``, ``mse_mad`` (MSE-SR against
        GAN-SR), means over the images, and ``per_image``.
    """
    from desra_basicsr.evaluation.detail import DetailSummary
    from desra_basicsr.image_io import list_images, read_image, read_mask, stem

    finetuned, mse = DetailSummary(), DetailSummary()
    for name in list_images(folders['sr_gan']):
        key, png = stem(name), f'{stem(name)}.png'
        gan = read_image(osp.join(folders['sr_gan'], name))
        mask = read_mask(osp.join(folders['masks_before'], png))
        finetuned.add(key, gan, read_image(osp.join(folders['sr_finetuned'], png)), mask)
        mse.add(key, gan, read_image(osp.join(folders['sr_mse'], png)), mask)
    return {
        'std_ratio': finetuned.mean('std_ratio'),
        'mad': finetuned.mean('mad'),
        'mse_std_ratio': mse.mean('std_ratio'),
        'mse_mad': mse.mean('mad'),
        'per_image': finetuned.per_image
    }


class StageClock:
    """Runs the stages of the demo, printing each name and adding up the seconds each name took."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}

    def __call__(self, name: str, fn: Callable, *args) -> Any:
        """Run ``fn(*args)`` as stage ``name``; returns its result."""
        print(f'\n== {name}', flush=True)
        start = time.time()
        result = fn(*args)
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.time() - start, 1)
        return result


def run_demo(out: str, settings: DemoSettings) -> Dict[str, Any]:
    """Run the whole loop (see the module docstring) and print the paper-style tables.

    Args:
        out (str): Output folder.
        settings (DemoSettings): Inputs, weights, fine-tune recipe, iterations and seed, segmentation and device.

    Returns:
        dict: Per set (``heldout``, ``finetune``): the comparison ``summary``, ``per_image`` and ``detail``; and
        stage ``seconds``, ``semantics``, ``report``.

    Raises:
        DesraSettingsError: For missing inputs, overlapping sets or an output folder holding another run.
        DemoError: When a stage fails.
    """
    check_settings(settings)
    out = osp.abspath(out)
    os.makedirs(out, exist_ok=True)
    _claim_output(out, settings)
    folders = {
        name: {k: osp.join(out, name, k)
               for k in ('sr_mse', 'sr_gan', 'masks_before', 'sr_finetuned', 'masks_after')}
        for name in SETS
    }
    _print_start(out, settings)
    stage = StageClock()
    for name, lr in settings.inputs().items():
        _detect_before(stage, settings, lr, folders[name])
    opt_path, weights = _finetune(stage, settings, out, folders['finetune'])
    result: Dict[str, Any] = {}
    for name, lr in settings.inputs().items():
        result[name] = _detect_after(stage, settings, lr, folders[name], (opt_path, weights),
                                     osp.join(out, f'compare_{name}.json'))
    page = stage('report', _report, settings, folders['heldout'], osp.join(out, 'report'))
    result.update(seconds=stage.seconds, semantics=bool(settings.seg_checkpoint), report=page)
    with atomic_write_path(osp.join(out, 'demo_result.json')) as tmp:
        with open(tmp, 'w') as fobj:
            json.dump(result, fobj, indent=2)
    print_tables(result, settings)
    return result


def _print_start(out: str, settings: DemoSettings) -> None:
    """The first lines: what runs where, and whether semantics are on."""
    from desra_basicsr.constants import SEGFORMER_CHECKPOINT_NAME
    print(f'DeSRA demo -> {out}: fine-tune {settings.iters} iterations (seed {settings.seed}) on '
          f'{settings.finetune_input}, judged on {settings.heldout_input}; device {settings.device}')
    print('semantics: ON (' + settings.seg_checkpoint + ')' if settings.seg_checkpoint else
          SEMANTICS_OFF.format(checkpoint=SEGFORMER_CHECKPOINT_NAME),
          flush=True)


def _detection(settings: DemoSettings, mse: str, gan: str, masks: str) -> Any:
    """DeSRA-det of the demo's GAN-SR (or fine-tuned) outputs against the MSE-SR ones."""
    from desra_basicsr.jobs import detect
    return detect.run(detect.DetectSettings(
        mse=mse, gan=gan, out=masks, seg_checkpoint=settings.seg_checkpoint, seg_config=settings.seg_config,
        device=settings.device))


def _sr(name: str, settings: DemoSettings, lr: str, out: str, opt: str, weights: str) -> Any:
    """Inference of one demo model over one set's LR photos (stage ``name``)."""
    from desra_basicsr.jobs import sr
    return _job(name, sr.run(sr.SRSettings(input=lr, out=out, opt=opt, weights=weights, device=settings.device)))


def _detect_before(stage: StageClock, settings: DemoSettings, lr: str, f: Dict[str, str]) -> None:
    """Stage 1 for one set: MSE-SR and GAN-SR inference, DeSRA-det."""
    stage('sr_mse', _sr, 'sr_mse', settings, lr, f['sr_mse'], MSE_OPT, settings.mse_weights)
    stage('sr_gan', _sr, 'sr_gan', settings, lr, f['sr_gan'], GAN_OPT, settings.gan_weights)
    stage('detect_before', lambda: _job('detect_before', _detection(settings, f['sr_mse'], f['sr_gan'],
                                                                    f['masks_before'])))


def _finetune(stage: StageClock, settings: DemoSettings, out: str, train: Dict[str, str]) -> Tuple[str, str]:
    """Stages 2-3: pseudo-GT of the fine-tune set, then the fine-tune (skipped when its weights exist).

    Returns:
        tuple[str, str]: The fine-tune option file and the fine-tuned generator's weights.
    """
    from desra_basicsr.jobs import pseudo_gt
    stage('pseudo_gt', lambda: _job('pseudo_gt', pseudo_gt.run(pseudo_gt.PseudoGTSettings(
        mse=train['sr_mse'], gan=train['sr_gan'], masks=train['masks_before'],
        out=osp.join(out, 'finetune', 'pseudo_gt')))))
    opt_path = osp.join(out, 'options', 'finetune_desra.yml')
    opt = write_finetune_options(settings, train, opt_path)
    weights = osp.join(out, 'experiments', opt['name'], 'models', 'net_g_latest.pth')
    if osp.isfile(weights):
        print(f'\nfine-tune: {weights} exists, skipped')
    else:
        stage('finetune', _train, opt_path, out, osp.join(out, 'finetune.log'), settings.device)
    return opt_path, weights


def _detect_after(stage: StageClock, settings: DemoSettings, lr: str, f: Dict[str, str], finetuned: Tuple[str, str],
                  compare_json: str) -> Dict[str, Any]:
    """Stages 4-5 for one set: fine-tuned inference, DeSRA-det again, the comparison and the detail kept.

    Returns:
        dict: The comparison ``summary``, ``per_image`` and ``detail`` of the set.
    """
    from desra_basicsr.jobs import compare
    opt_path, weights = finetuned
    stage('sr_finetuned', _sr, 'sr_finetuned', settings, lr, f['sr_finetuned'], opt_path, weights)
    stage('detect_after', lambda: _job('detect_after', _detection(settings, f['sr_mse'], f['sr_finetuned'],
                                                                  f['masks_after'])))
    compared = stage('compare', lambda: compare.run(
        compare.CompareSettings(before=f['masks_before'], after=f['masks_after'], json=compare_json, progress=False)))
    detail = stage('detail', measure_detail, f)
    return {'summary': compared.summary, 'per_image': compared.per_image, 'detail': detail}


def _report(settings: DemoSettings, held: Dict[str, str], out: str) -> str:
    """The visual report of the held-out set; returns the page."""
    from desra_basicsr.jobs import report
    return report.run(report.ReportSettings(
        out=out, lr=settings.heldout_input, mse=held['sr_mse'], gan=held['sr_gan'], masks=held['masks_before'],
        finetuned=held['sr_finetuned'], finetuned_masks=held['masks_after'],
        title=f'DeSRA demo: held-out photos ({settings.iters} fine-tune iterations on the fine-tune set)',
        progress=False)).page


def format_set_line(name: str, figures: Dict[str, Any]) -> str:
    """One set's headline: removal and addition rates, area before/after, detail kept outside the masks.

    Args:
        name (str): ``heldout`` or ``finetune``.
        figures (dict): ``run_demo(...)[name]``.

    Returns:
        str: Two lines of text.
    """
    s, d = figures['summary'], figures['detail']
    removal = f'{s["removal_rate"]:.2f} %' if s['n_regions_before'] else 'n/a (nothing detected before)'
    change = (f' ({100.0 * (s["area_after"] - s["area_before"]) / s["area_before"]:+.1f} %)'
              if s['area_before'] else '')

    def num(value: Optional[float], fmt: str) -> str:
        return 'n/a' if value is None else format(value, fmt)

    return (f'{SET_TITLES[name]}, {s["images"]} images: removal rate {removal}, addition rate '
            f'{s["addition_rate"]:.2f} % ({s["images_with_additions"]} of {s["images"]} images gained artifacts), '
            f'detected area {s["area_before"]:.2f} % -> {s["area_after"]:.2f} %{change}\n'
            f'  detail outside the before-masks: local std {num(d["std_ratio"], ".3f")} of GAN-SR\'s '
            f'(MSE-SR: {num(d["mse_std_ratio"], ".3f")}), mean |fine-tuned - GAN-SR| {num(d["mad"], ".2f")} grey '
            f'levels (MSE-SR: {num(d["mse_mad"], ".2f")})')


def format_demo_table(figures: Dict[str, Any]) -> str:
    """Per image of one set: detected artifact area before/after fine-tuning (percent of the SR image), regions
    removed, whether new artifacts appeared, and the detail kept outside the before-mask.

    Args:
        figures (dict): ``run_demo(...)[set]``.

    Returns:
        str: The table, one line per row.
    """
    lines = [f'{"image":<16}{"area before %":>15}{"area after %":>14}{"regions":>9}{"removed":>9}'
             f'{"new artifacts":>15}{"detail kept":>13}']
    detail = figures['detail']['per_image']
    for name, row in sorted(figures['per_image'].items()):
        kept = detail.get(name, {}).get('std_ratio', float('nan'))
        lines.append(f'{name:<16}{row["area_before"]:>15.2f}{row["area_after"]:>14.2f}{row["n_regions_before"]:>9d}'
                     f'{row["n_removed"]:>9d}{"yes" if row["added"] else "no":>15}{kept:>13.3f}')
    s = figures['summary']
    lines.append(f'{"mean / total":<16}{s["area_before"]:>15.2f}{s["area_after"]:>14.2f}{s["n_regions_before"]:>9d}'
                 f'{s["n_removed"]:>9d}{s["images_with_additions"]:>15d}{figures["detail"]["std_ratio"] or 0:>13.3f}')
    return '\n'.join(lines)


def print_tables(result: Dict[str, Any], settings: DemoSettings) -> None:
    """Print the held-out table, both sets' headlines, the semantics state and where the report is."""
    print('\n=== DeSRA demo: GAN-SR artifacts before and after the DeSRA fine-tune, held-out photos ===')
    print(format_demo_table(result['heldout']))
    for name in SETS:
        print(format_set_line(name, result[name]))
    print(f'semantics: {"on" if result["semantics"] else "off (no SegFormer checkpoint; see the notice above)"}; '
          f'fine-tune: {settings.iters} iterations, seed {settings.seed}, recipe {settings.finetune_options}')
    print('stage seconds: ' + ', '.join(f'{k} {v}' for k, v in result['seconds'].items()))
    print(f'visual report: {result["report"]}')
