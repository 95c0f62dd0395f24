"""The DeSRA loop for your own model (``desra loop``), once or continually as batches of real LR images arrive.

For a GAN-SR model and its MSE-SR twin (each a BasicSR option file, or an architecture with its weights, as
``desra sr`` takes them) and batches of real LR images, each round runs these stages on the existing jobs:

1. ``sr_mse``, ``sr_gan``, ``detect``: both models over the batch (the GAN-SR model is the current version) and
   DeSRA-det; the images with artifacts join the *pool* (with ``train_clean`` the others join it too);
2. when the pool holds at least ``min_pool`` images with artifacts: ``split`` (the validation split, never
   trained on: with ``length='chosen'``, ``val_fraction`` of the pool's artifact images; with either length,
   ``holdback`` of its images without artifacts), ``pseudo_gt`` (eq. 10), ``finetune`` (the DeSRA fine-tune from
   the current version, :mod:`desra_basicsr.jobs.finetune`);
3. ``choose``: the length of the fine-tune. With ``length='chosen'`` every saved checkpoint is scored on the
   validation split and the rule of :func:`desra_basicsr.evaluation.selection.choose_checkpoint` keeps one; with
   ``length='fixed'`` the last checkpoint (``iters``, the paper's 1000 by default) is used, and scored on the
   validation split when there is one;
4. ``forgetting``: the images fixed in earlier rounds are scored again with the candidate, against the current
   version's masks (:func:`score_model`);
5. ``pool_after``, ``heldout``: the candidate on the pool (against the masks it was fine-tuned on) and on the
   held-out set (against the starting model; never trained on, never used to decide): removal, addition, area,
   detail;
6. ``accept``: a candidate that gains artifacts on more than ``forget_tolerance`` percent (0: on any) of the images
   fixed in earlier rounds, on more than ``pool_tolerance`` percent (10: at most one image in ten) of its own
   pool, or on more than ``max_addition`` percent (0: on any) of the validation split it never trained on, and a
   ``length='chosen'`` candidate that the rule kept only as its fallback (it admitted no checkpoint), is
   rejected and the current version kept (the pool stays for the next round); otherwise it becomes the
   current version, registered in ``OUT/models/manifest.json`` (:mod:`desra_basicsr.jobs.model_registry`), and the
   pool's images count as fixed (an image of the pool that gained artifacts is then judged against the new
   version's masks). ``report``: the round's HTML page.

Batches are a list of folders (one round each), or a watched folder: every poll, the images not taken before form
the next batch, until a file named ``STOP`` appears there or ``max_rounds`` rounds ran. Every stage is recorded in
``OUT/loop_state.json`` when it finishes (:mod:`desra_basicsr.jobs.loop_state`), so a killed loop resumes where it
stopped; the state records the settings and the SHA-256 of the files the loop reads (:meth:`LoopSettings.files`),
and a folder written with other settings or other files is refused. Example::

    from desra_basicsr.jobs.loop import LoopSettings, run
    result = run(LoopSettings(out='loop', batches=('lr/week1', 'lr/week2'), heldout='lr/heldout',
                              gan_opt='options/gan.yml', mse_opt='options/mse.yml'))
    print(result.current, result.rounds[-1]['accept'])
"""
import html
import os
import os.path as osp
import random
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Literal, Optional, Tuple

import yaml

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.jobs.finetune import MAX_ITERS, MAX_SEED, read_template
from desra_basicsr.jobs.loop_sets import ImageSet, ModelSpec, check_twins, family_template, link_file, measure_detail
from desra_basicsr.jobs.loop_state import LoopState
from desra_basicsr.jobs.model_registry import ModelRegistry, ModelVersion, copy_atomic, write_sr_options
from desra_basicsr.settings import Settings, normalise_path, setting
from desra_basicsr.utils import atomic_write_path

if TYPE_CHECKING:
    from desra_basicsr.evaluation.selection import SelectionRule

#: File that stops a watched folder's loop.
STOP_FILE = 'STOP'
#: Settings that do not change the results (a loop may resume with other values).
UNRECORDED = ('out', 'batches', 'device', 'progress', 'poll_seconds', 'max_rounds')


@dataclass(frozen=True)
class LoopSettings(Settings):
    """Settings of :func:`run` (see the module docstring).

    Attributes:
        out (str): Output folder.
        batches (tuple[str, ...]): Folders of real LR images, one round each (exclusive with ``watch``).
        watch (str | None): A folder polled for new images; each poll's new images are the next batch.
        gan_opt, gan_arch, gan_arch_opt, gan_weights, gan_param_key: The GAN-SR model, as ``desra sr`` takes it.
        netd_weights (str | None): Its discriminator (None: none is loaded, not even the template's
            ``path.pretrain_network_d``; D starts from scratch and G is held for the template's
            ``train.net_d_init_iters``).
        mse_opt, mse_arch, mse_arch_opt, mse_weights, mse_param_key: The MSE-SR twin.
        template (str | None): Fine-tune option template (None: the GAN-SR model's family under ``options/``).
        heldout (str | None): LR images scored before and after every round, never trained on.
        length (str): ``chosen`` (the rule picks a checkpoint on the validation split) or ``fixed`` (``iters``).
        iters (int): Fine-tune iterations: the longest run (``chosen``) or the run (``fixed``; the paper: 1000).
        checkpoint_every (int): Iterations between the checkpoints scored with ``length='chosen'``.
        val_fraction (float): Share of the pool's artifact images held out as the validation split (``chosen``).
        holdback (float): Share of the pool's images without artifacts (``train_clean``) held out in the validation
            split too, with either length: a candidate that paints artifacts on images it never trained on is seen
            by the rule and rejected (0: none held back).
        min_detail (float): The rule's least detail kept outside the masks (std ratio).
        max_addition (float): The largest addition rate on the validation split, percent: the rule's, and beyond
            it the candidate is rejected.
        tie_area (float): The rule's tie: an admitted checkpoint whose area exceeds the smallest by at most this
            many percentage points ties with it (the last of the unbroken run of ties is kept).
        min_pool (int): Images with artifacts the pool must hold before a fine-tune.
        train_clean (bool): Also fine-tune on the images without artifacts (their pseudo-GT is the model's own
            output; the demo's recipe).
        forget_tolerance (float): Largest addition rate (percent) a fine-tuned model may have on the images fixed
            in earlier rounds; beyond it, the model is rejected.
        pool_tolerance (float): Largest addition rate (percent) a fine-tuned model may have on the pool it was
            fine-tuned on (training and validation images); beyond it, the model is rejected.
        max_rounds (int): Stop after this many rounds (0: when the batches run out, or at ``STOP``).
        poll_seconds (float): Seconds between polls of ``watch``.
        seed (int): Seed of the first round's fine-tune and split (round r uses ``seed + r - 1``).
        seg_checkpoint, seg_config: SegFormer ADE20K checkpoint and config (semantics on); None: off.
        tile (int): Tile size of the SR stages in LR pixels (0: whole images).
        device (str): ``cpu``, ``cuda`` or ``cuda:N``.
        progress (bool): Show the jobs' progress bars.
    """
    out: str = setting(kind='path')
    batches: Tuple[str, ...] = ()
    watch: Optional[str] = setting(None, kind='path')
    gan_opt: Optional[str] = setting(None, kind='path')
    gan_arch: Optional[str] = None
    gan_arch_opt: Dict[str, Any] = field(default_factory=dict)
    gan_weights: Optional[str] = setting(None, kind='path')
    gan_param_key: Optional[str] = None
    netd_weights: Optional[str] = setting(None, kind='path')
    mse_opt: Optional[str] = setting(None, kind='path')
    mse_arch: Optional[str] = None
    mse_arch_opt: Dict[str, Any] = field(default_factory=dict)
    mse_weights: Optional[str] = setting(None, kind='path')
    mse_param_key: Optional[str] = None
    template: Optional[str] = setting(None, kind='path')
    heldout: Optional[str] = setting(None, kind='path')
    length: Literal['chosen', 'fixed'] = 'chosen'
    iters: int = setting(1000, lo=1, hi=MAX_ITERS)
    checkpoint_every: int = setting(100, lo=1, hi=MAX_ITERS)
    val_fraction: float = setting(0.25, lo=0, lo_open=True, hi=1, hi_open=True)
    holdback: float = setting(0.0, lo=0, hi=1, hi_open=True)
    min_detail: float = setting(0.9, lo=0, hi=10)
    max_addition: float = setting(0.0, lo=0, hi=100)
    tie_area: float = setting(0.05, lo=0, hi=100)
    min_pool: int = setting(4, lo=1, hi=1_000_000)
    train_clean: bool = False
    forget_tolerance: float = setting(0.0, lo=0, hi=100)
    pool_tolerance: float = setting(10.0, lo=0, hi=100)
    max_rounds: int = setting(0, lo=0, hi=1_000_000)
    poll_seconds: float = setting(10.0, lo=0, hi=86400)
    seed: int = setting(0, lo=0, hi=MAX_SEED)
    seg_checkpoint: Optional[str] = setting(None, kind='path')
    seg_config: Optional[str] = setting(None, kind='path')
    tile: int = setting(0, lo=0, hi=1 << 16)
    device: str = setting('cpu', kind='device')
    progress: bool = False

    def check(self) -> None:
        """One source of batches, two usable models, a validation split the chosen length can use."""
        if bool(self.batches) == bool(self.watch):
            raise DesraSettingsError('--input / --watch: give exactly one of them')
        object.__setattr__(self, 'batches', tuple(normalise_path(str(b)) for b in self.batches))
        self.gan().check()
        self.mse().check()
        if self.seg_config and not self.seg_checkpoint:
            raise DesraSettingsError('--seg-config: needs --seg-checkpoint')
        if self.length == 'chosen' and self.min_pool < 2:
            raise DesraSettingsError(f'--min-pool {self.min_pool}: --length chosen needs at least 2 images with '
                                     'artifacts (one to validate on); raise --min-pool or use --length fixed')
        if self.holdback and not self.train_clean:
            raise DesraSettingsError(f'--holdback {self.holdback:g}: needs --train-clean (the held-back images are '
                                     'the pool\'s images without artifacts, which join the pool with --train-clean)')
        for path in (self.netd_weights, self.template, self.seg_checkpoint, self.seg_config):
            if path and not osp.isfile(path):
                raise DesraSettingsError(f'{path}: file not found')

    def gan(self) -> ModelSpec:
        """The GAN-SR model."""
        return ModelSpec('gan', self.gan_opt, self.gan_arch, dict(self.gan_arch_opt), self.gan_weights,
                         self.gan_param_key)

    def mse(self) -> ModelSpec:
        """The MSE-SR twin."""
        return ModelSpec('mse', self.mse_opt, self.mse_arch, dict(self.mse_arch_opt), self.mse_weights,
                         self.mse_param_key)

    def recorded(self) -> Dict[str, Any]:
        """The settings that change the results, as ``loop_state.json`` records them."""
        return {k: v for k, v in asdict(self).items() if k not in UNRECORDED}

    def files(self) -> Dict[str, str]:
        """The files whose contents change the results, by role; ``loop_state.json`` records their SHA-256.

        The fine-tune template (the recipe), the models' option files, their weights (also those an option file
        names), the discriminator, the segmentation checkpoint and its config.

        Returns:
            dict[str, str]: Role (the setting's name) -> file.

        Raises:
            DesraSettingsError: For a file that is not there (weights named by an option file included).
        """
        gan, mse = self.gan(), self.mse()
        found = {'template': self.template or family_template(gan), 'gan_opt': self.gan_opt,
                 'gan_weights': gan.weights_file(), 'netd_weights': self.netd_weights, 'mse_opt': self.mse_opt,
                 'mse_weights': mse.weights_file(), 'seg_checkpoint': self.seg_checkpoint,
                 'seg_config': self.seg_config}
        for role, path in found.items():
            if path and not osp.isfile(path):
                raise DesraSettingsError(f'{path}: file not found ({role})')
        return {role: path for role, path in found.items() if path}


@dataclass
class LoopResult:
    """Result of :func:`run`.

    Attributes:
        out (str): The output folder.
        rounds (list[dict]): Each round's stage records (``start``, ``detect``, ..., ``accept``), in order.
        current (str): The version in use at the end.
        manifest (str): ``OUT/models/manifest.json``.
        heldout_before (dict | None): The held-out set before the first round (``images``, ``area``).
    """
    out: str
    rounds: List[Dict[str, Any]]
    current: str
    manifest: str
    heldout_before: Optional[Dict[str, Any]] = None

    def describe(self) -> str:
        """One line: rounds, versions, the current one."""
        accepted = sum(1 for r in self.rounds if r.get('accept', {}).get('accepted'))
        return (f'desra loop: {len(self.rounds)} round(s), {accepted} fine-tune(s) accepted; current model '
                f'{self.current} (manifest: {self.manifest})')


def check_inputs(settings: LoopSettings) -> None:
    """Check the batches, the held-out folder, the models and the device before any stage runs.

    Raises:
        DesraSettingsError: For a missing or empty batch, a held-out folder sharing images with a batch, a model
            whose generator cannot be built from its architecture and arguments (built without weights), an MSE-SR
            model of another scale, a model family without a template, or a device that is not there.
    """
    from desra_basicsr.demo_corpus import check_disjoint
    from desra_basicsr.devices import resolve_device
    from desra_basicsr.folders import check_out_dir, require_folder
    from desra_basicsr.image_io import IMAGE_EXTENSIONS, list_images

    folders = {f'input {b}': b for b in settings.batches}
    for role, folder in (('watch', settings.watch), ('heldout', settings.heldout)):
        if folder:
            require_folder(folder, role)
            folders[role] = folder
    for batch in settings.batches:
        require_folder(batch, 'input')
        if not list_images(batch):
            raise DesraSettingsError(f'{batch}: this --input batch holds no image ({", ".join(IMAGE_EXTENSIONS)}); '
                                     'remove it from the list or add its images')
        if settings.heldout:
            check_disjoint(batch, settings.heldout)
    if settings.heldout and not list_images(settings.heldout):
        raise DesraSettingsError(f'{settings.heldout}: --heldout holds no image')
    check_out_dir(settings.out, folders)
    settings.gan().check_network()
    settings.mse().check_network()
    check_twins(settings.gan(), settings.mse())
    if not settings.template:
        family_template(settings.gan())
    resolve_device(settings.device)


def _sr(settings: LoopSettings, lr: str, out: str, model: Dict[str, Any]) -> Dict[str, Any]:
    """One model over one folder of LR images (:mod:`desra_basicsr.jobs.sr`); its record."""
    from desra_basicsr.jobs import sr
    result = sr.run(sr.SRSettings(input=lr, out=out, device=settings.device, tile=settings.tile,
                                  progress=settings.progress, **model))
    result.require_all_done('stage sr')
    return {'folder': out, 'images': len(result.items)}


def _detect(settings: LoopSettings, mse: str, gan: str, out: str) -> Dict[str, float]:
    """DeSRA-det of ``gan`` against ``mse``; the artifact fraction of each image."""
    from desra_basicsr.jobs import detect
    result = detect.run(detect.DetectSettings(mse=mse, gan=gan, out=out, device=settings.device,
                                              progress=settings.progress, **dict(_detect_options(settings))))
    result.require_all_done('stage detect')
    return {name: rec.artifact_fraction for name, rec in detect.DetectRecord.done(result).items()}


def _detect_options(settings: LoopSettings) -> Tuple[Tuple[str, Any], ...]:
    """The detection settings of every detect stage (beyond the folders and the device)."""
    return (('seg_checkpoint', settings.seg_checkpoint), ('seg_config', settings.seg_config))


def score_model(settings: LoopSettings, images: Dict[str, str], opt: str, out: str) -> Dict[str, Any]:
    """A model on a set of images, against the set's masks: the paper's Table 3 figures and the detail kept.

    Args:
        settings (LoopSettings): Device, tiles and detection settings.
        images (dict): Folders of the set: ``lr``, ``mse`` (MSE-SR outputs), ``gan`` (the outputs the masks were
            detected on) and ``mask``.
        opt (str): Option file of the model (``desra sr --opt``).
        out (str): Folder for ``sr/``, ``masks/`` and ``compare.json``.

    Returns:
        dict: ``summary`` and ``per_image`` (:mod:`desra_basicsr.jobs.compare`), ``detail``
        (:func:`~desra_basicsr.jobs.loop_sets.measure_detail`), ``sr`` and ``masks`` (the folders).
    """
    from desra_basicsr.jobs import compare
    sr_dir, masks_dir = osp.join(out, 'sr'), osp.join(out, 'masks')
    _sr(settings, images['lr'], sr_dir, {'opt': opt})
    _detect(settings, images['mse'], sr_dir, masks_dir)
    compared = compare.run(compare.CompareSettings(before=images['mask'], after=masks_dir,
                                                   json=osp.join(out, 'compare.json'), progress=False))
    return {'summary': compared.summary, 'per_image': compared.per_image, 'sr': sr_dir, 'masks': masks_dir,
            'detail': measure_detail(images['gan'], sr_dir, images['mask'], images['mse'])}


def _write_template(settings: LoopSettings, path: str) -> Dict[str, Any]:
    """The fine-tune template with the GAN-SR model's ``network_g`` (set-up stage ``template``)."""
    source = settings.template or family_template(settings.gan())
    opt = read_template(source)
    opt['network_g'] = settings.gan().network_g()
    with atomic_write_path(path) as tmp:
        with open(tmp, 'w') as f:
            f.write(f'# written by `desra loop` from {source}, with the GAN-SR model\'s network_g\n')
            yaml.safe_dump(opt, f, sort_keys=False)
    return {'template': path, 'source': source}


def _register_origin(settings: LoopSettings, registry: ModelRegistry) -> Dict[str, Any]:
    """Version ``v0``: the GAN-SR model the loop starts from (set-up stage ``origin``)."""
    gan = settings.gan()
    opt = write_sr_options(osp.join(registry.version_folder('v0'), 'sr.yml'), gan.network_g(), gan.weights_file(),
                           gan.key())
    entry = ModelVersion('v0', None, gan.weights_file(), settings.netd_weights, opt,
                         reason='the GAN-SR model the loop started from')
    registry.add(entry, current='v0')
    return asdict(entry)


def _heldout_before(settings: LoopSettings, state: LoopState, registry: ModelRegistry) -> Optional[Dict[str, Any]]:
    """The held-out set with both starting models: the ``before`` every round is scored against."""
    if not settings.heldout:
        return None
    root = osp.join(settings.out, 'heldout')
    folders = {'lr': settings.heldout, 'mse': osp.join(root, 'sr_mse'), 'gan': osp.join(root, 'sr_gan'),
               'mask': osp.join(root, 'masks')}
    state.stage(0, 'heldout_sr_mse',
                lambda: _sr(settings, settings.heldout, folders['mse'], settings.mse().sr_fields()))
    state.stage(0, 'heldout_sr_gan', lambda: _sr(settings, settings.heldout, folders['gan'],
                                                 {'opt': registry.get('v0').opt}))
    found = state.stage(0, 'heldout_detect', lambda: {
        'fractions': _detect(settings, folders['mse'], folders['gan'], folders['mask'])})
    fractions = list(found['fractions'].values())
    return {'folders': folders, 'images': len(fractions),
            'area': 100.0 * sum(fractions) / len(fractions) if fractions else 0.0}


def _take_new_images(settings: LoopSettings, state: LoopState, number: int) -> Optional[str]:
    """Link the watched folder's images not taken before into round ``number``'s ``lr/``; None when none."""
    from desra_basicsr.image_io import list_images, stem
    new = [n for n in list_images(settings.watch) if n not in set(state.data['taken'])]
    if not new:
        return None
    if settings.heldout:
        shared = sorted({stem(n) for n in new} & {stem(n) for n in list_images(settings.heldout)})
        if shared:
            raise DesraSettingsError(f'{settings.watch}: new images share names with --heldout {settings.heldout} '
                                     f'({", ".join(shared[:5])}); the held-out images must be ones the fine-tune '
                                     'never sees')
    lr = osp.join(_round_dir(settings, number), 'lr')
    os.makedirs(lr, exist_ok=True)
    for name in new:
        link_file(osp.join(settings.watch, name), osp.join(lr, name))
    state.stage(number, 'start', lambda: {'lr': lr, 'model': state.data['current'], 'images': len(new)},
                lambda data, rec: data['taken'].extend(new))
    return lr


def batches(settings: LoopSettings, state: LoopState) -> Iterator[Tuple[int, str]]:
    """The rounds' batches: ``(round, LR folder)``, the recorded ones first (see the module docstring)."""
    number = 0
    limit = settings.max_rounds or float('inf')
    sources = list(settings.batches)
    while number < limit:
        number += 1
        started = state.record(number, 'start')
        if started is not None:
            yield number, started['lr']
        elif settings.batches:
            if number > len(sources):
                return
            yield number, sources[number - 1]
        else:
            lr = _take_new_images(settings, state, number)
            while lr is None:
                if osp.exists(osp.join(settings.watch, STOP_FILE)):
                    return
                time.sleep(settings.poll_seconds)
                lr = _take_new_images(settings, state, number)
            yield number, lr


def _round_dir(settings: LoopSettings, number: int) -> str:
    return osp.join(settings.out, 'rounds', f'{number:03d}')


def _pool_entries(number: int, lr: str, folders: Dict[str, str], fractions: Dict[str, float],
                  train_clean: bool) -> List[Dict[str, Any]]:
    """The pool entries of one batch: its images with artifacts (and, with ``train_clean``, the others)."""
    from desra_basicsr.image_io import stem_index
    lr_files = stem_index(lr)
    return [{
        'name': f'r{number:03d}_{key}', 'round': number, 'stem': key, 'artifact': fraction > 0, 'lr': lr_files[key],
        'mse': osp.join(folders['mse'], f'{key}.png'), 'gan': osp.join(folders['gan'], f'{key}.png'),
        'mask': osp.join(folders['mask'], f'{key}.png')
    } for key, fraction in sorted(fractions.items()) if fraction > 0 or train_clean]


def _detect_batch(settings: LoopSettings, state: LoopState, number: int, lr: str, opt: str) -> Dict[str, Any]:
    """Stages ``sr_mse``, ``sr_gan``, ``detect``: the batch with both models; new images join the pool."""
    root = _round_dir(settings, number)
    folders = {'mse': osp.join(root, 'sr_mse'), 'gan': osp.join(root, 'sr_gan'), 'mask': osp.join(root, 'masks')}
    state.stage(number, 'sr_mse', lambda: _sr(settings, lr, folders['mse'], settings.mse().sr_fields()))
    state.stage(number, 'sr_gan', lambda: _sr(settings, lr, folders['gan'], {'opt': opt}))

    def detect() -> Dict[str, Any]:
        fractions = _detect(settings, folders['mse'], folders['gan'], folders['mask'])
        entries = _pool_entries(number, lr, folders, fractions, settings.train_clean)
        artifacts = sorted(k for k, v in fractions.items() if v > 0)
        return {'images': len(fractions), 'artifacts': artifacts, 'entries': entries,
                'area': 100.0 * sum(fractions.values()) / max(1, len(fractions))}

    return state.stage(number, 'detect', detect, lambda data, rec: data['pool'].extend(rec['entries']))


def _split(settings: LoopSettings, pool: List[Dict[str, Any]], number: int) -> Dict[str, Any]:
    """Stage ``split``: the validation split (never trained on; see the module docstring) and the training set."""
    artifacts = [e['name'] for e in pool if e['artifact']]
    clean = [e['name'] for e in pool if not e['artifact']]
    rng = random.Random(settings.seed + number - 1)
    validation: List[str] = []
    if settings.length == 'chosen':
        count = min(len(artifacts) - 1, max(1, round(settings.val_fraction * len(artifacts))))
        validation = rng.sample(artifacts, count)
    validation = sorted(validation + rng.sample(clean, round(settings.holdback * len(clean))))
    train = [e['name'] for e in pool if e['name'] not in validation]
    root = _round_dir(settings, number)
    by_name = {e['name']: e for e in pool}
    ImageSet(osp.join(root, 'train')).gather(by_name[n] for n in train)
    ImageSet(osp.join(root, 'validation')).gather(by_name[n] for n in validation)
    ImageSet(osp.join(root, 'pool')).gather(pool)
    return {'train': train, 'validation': validation}


def _set_folders(root: str) -> Dict[str, str]:
    return {role: ImageSet(root).folder(role) for role in ('lr', 'mse', 'gan', 'mask')}


def _finetune(settings: LoopSettings, state: LoopState, registry: ModelRegistry, number: int,
              parent: str) -> Dict[str, Any]:
    """Stages ``pseudo_gt`` and ``finetune``: eq. 10 on the training set, then the DeSRA fine-tune from ``parent``."""
    from desra_basicsr.jobs import finetune, pseudo_gt
    root = _round_dir(settings, number)
    train = _set_folders(osp.join(root, 'train'))
    state.stage(number, 'pseudo_gt', lambda: {'images': len(pseudo_gt.run(pseudo_gt.PseudoGTSettings(
        mse=train['mse'], gan=train['gan'], masks=train['mask'], out=osp.join(root, 'pseudo_gt'),
        progress=settings.progress)).items)})
    model = registry.get(parent)
    every = settings.checkpoint_every if settings.length == 'chosen' else settings.iters
    template = state.record(0, 'template')

    def work() -> Dict[str, Any]:
        try:
            result = finetune.run(finetune.FinetuneSettings(
                template=template['template'], out=osp.join(root, 'finetune'),
                dataroot_lq=train['lr'], dataroot_mse=train['mse'], dataroot_gan=train['gan'],
                dataroot_mask=train['mask'], generator=model.weights, discriminator=model.netd_weights,
                iters=settings.iters, checkpoint_every=every, seed=settings.seed + number - 1, device=settings.device))
        except DesraSettingsError as err:  # it names the options written from the template: name the template too
            raise DesraSettingsError(f'{err} (fine-tune options derived from {template["source"]})') from err
        return {'checkpoints': {str(k): v for k, v in result.checkpoints.items()},
                'netd': {str(k): _discriminator(v, k) for k, v in result.checkpoints.items() if _discriminator(v, k)},
                'options': result.options}

    return state.stage(number, 'finetune', work)


def _discriminator(generator: str, iteration: int) -> Optional[str]:
    """The discriminator BasicSR saved beside a generator checkpoint (``net_d_<iter>.pth``), or None."""
    folder = osp.dirname(generator)
    for name in (f'net_d_{iteration}.pth', 'net_d_latest.pth' if generator.endswith('_latest.pth') else None):
        if name and osp.isfile(osp.join(folder, name)):
            return osp.join(folder, name)
    return None


def _choose(settings: LoopSettings, state: LoopState, number: int, trained: Dict[str, Any]) -> Dict[str, Any]:
    """Stage ``choose``: the checkpoint the rule keeps on the validation split, or the last one (fixed length)."""
    root = _round_dir(settings, number)
    checkpoints = {int(k): v for k, v in trained['checkpoints'].items()}

    def work() -> Dict[str, Any]:
        from desra_basicsr.evaluation.selection import choose_checkpoint
        from desra_basicsr.jobs.checkpoint_scores import CheckpointScoreSettings, score_checkpoints
        fixed = settings.length == 'fixed'
        scored = {max(checkpoints): checkpoints[max(checkpoints)]} if fixed else checkpoints
        scores = []
        if state.record(number, 'split')['validation']:
            images = _set_folders(osp.join(root, 'validation'))
            scores = score_checkpoints(CheckpointScoreSettings(
                out=osp.join(root, 'scores'), lr=images['lr'], mse=images['mse'], gan=images['gan'],
                masks=images['mask'], opt=trained['options'], checkpoints=tuple(sorted(scored.items())),
                detect_options=_detect_options(settings), device=settings.device, progress=settings.progress))
        if fixed:
            last = max(checkpoints)
            return {'iteration': last, 'weights': checkpoints[last], 'scores': [asdict(s) for s in scores],
                    'reason': f'fixed length: the last checkpoint, {last} iterations (--length fixed)',
                    'fallback': False}
        choice, reason = choose_checkpoint(scores, _rule(settings))
        chosen = {'iteration': choice.iter, 'weights': checkpoints[choice.iter], 'reason': reason,
                  'scores': [asdict(s) for s in scores]}
        return dict(chosen, fallback=fell_back(settings, chosen))

    found = state.stage(number, 'choose', work)
    if 'fallback' not in found:  # recorded by an older version: read it from the recorded scores
        found = dict(found, fallback=fell_back(settings, found))
    opt = write_sr_options(osp.join(root, 'candidate', 'sr.yml'), settings.gan().network_g(), found['weights'], None)
    return dict(found, opt=opt)


def _rule(settings: LoopSettings) -> 'SelectionRule':
    """The rule of :func:`~desra_basicsr.evaluation.selection.choose_checkpoint` with the loop's settings."""
    from desra_basicsr.evaluation.selection import SelectionRule  # numpy: not on the import path of --help
    return SelectionRule(max_addition=settings.max_addition, min_detail=settings.min_detail,
                         tie_area=settings.tie_area)


def fell_back(settings: LoopSettings, chosen: Dict[str, Any]) -> bool:
    """Whether the rule kept a ``choose`` record's checkpoint only as its fallback: it admitted none of them.

    Args:
        settings (LoopSettings): The length and the rule's settings.
        chosen (dict): The ``choose`` stage's record (the ``scores`` of every checkpoint scored).

    Returns:
        bool: True for a ``length='chosen'`` choice with no checkpoint that meets the rule; False with a fixed length.
    """
    from desra_basicsr.evaluation.selection import CheckpointScore
    rule = _rule(settings)
    return settings.length == 'chosen' and not any(rule.admits(CheckpointScore(**s)) for s in chosen['scores'])


def _forgetting(settings: LoopSettings, state: LoopState, number: int, opt: str) -> Dict[str, Any]:
    """Stage ``forgetting``: the candidate on the images fixed in earlier rounds, against the current masks."""
    root = osp.join(_round_dir(settings, number), 'forgetting')

    def work() -> Dict[str, Any]:
        fixed = state.data['fixed']
        if not fixed:
            return {'images': 0, 'passed': True, 'reason': 'no images fixed in earlier rounds'}
        ImageSet(osp.join(root, 'set')).gather(fixed)
        figures = score_model(settings, _set_folders(osp.join(root, 'set')), opt, root)
        added = figures['summary']['addition_rate']
        passed = added <= settings.forget_tolerance
        verdict = 'within' if passed else 'beyond'
        return {'images': len(fixed), 'passed': passed, 'figures': figures,
                'reason': f'{figures["summary"]["images_with_additions"]} of {len(fixed)} images fixed in earlier '
                          f'rounds gained artifacts ({added:.1f} %, {verdict} the tolerance of '
                          f'{settings.forget_tolerance:g} %)'}

    return state.stage(number, 'forgetting', work)


def rejection_reasons(forgetting: Dict[str, Any], pool: Dict[str, Any], pool_tolerance: float,
                      validation: Optional[Dict[str, Any]] = None, max_addition: float = 0.0,
                      fallback: Optional[str] = None) -> List[str]:
    """Why a candidate is rejected (stage ``accept`` of the module docstring); an empty list accepts it.

    Args:
        forgetting (dict): The ``forgetting`` stage's record: ``passed`` (the addition rate on the images fixed in
            earlier rounds is within ``forget_tolerance``) and ``reason``.
        pool (dict): The candidate's comparison summary on its own pool (``images``, ``images_with_additions``,
            ``addition_rate``), against the masks it was fine-tuned on.
        pool_tolerance (float): Largest addition rate on the pool, percent.
        validation (dict | None): The candidate on the validation split it never trained on (``images``,
            ``addition_rate``); None when the round has no validation split.
        max_addition (float): Largest addition rate on the validation split, percent.
        fallback (str | None): The ``choose`` stage's reason when the rule admitted no checkpoint and kept the
            candidate only as its fallback (``length='chosen'``); None otherwise.

    Returns:
        list[str]: One line per failed check.
    """
    problems = [] if forgetting['passed'] else [forgetting['reason']]
    if pool['addition_rate'] > pool_tolerance:
        problems.append(f'{pool["images_with_additions"]} of {pool["images"]} images of the pool it was fine-tuned on '
                        f'gained artifacts ({pool["addition_rate"]:.1f} %, beyond the pool tolerance of '
                        f'{pool_tolerance:g} %)')
    if validation and validation['addition_rate'] > max_addition:
        added = round(validation['addition_rate'] * validation['images'] / 100.0)
        problems.append(f'{added} of {validation["images"]} validation images, never trained on, gained artifacts '
                        f'({validation["addition_rate"]:.1f} %, beyond --max-addition {max_addition:g} %)')
    if fallback:
        problems.append(f'no checkpoint met the rule on the validation split; it is only the rule\'s fallback '
                        f'({fallback})')
    return problems


def _validation_figures(split: Dict[str, Any], chosen: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The chosen checkpoint's row of the validation scores (``images``, ``addition_rate``); None without a split."""
    rows = [s for s in chosen['scores'] if s['iter'] == chosen['iteration']]
    if not split['validation'] or not rows:
        return None
    return {'images': len(split['validation']), 'addition_rate': rows[0]['addition_rate']}


def _accept(settings: LoopSettings, state: LoopState, registry: ModelRegistry, number: int,
            decided: Dict[str, Any]) -> Dict[str, Any]:
    """Stage ``accept``: register an accepted candidate and make it current; or keep the current version."""
    parent = state.record(number, 'start')['model']
    chosen, forgetting, trained = decided['choose'], decided['forgetting'], decided['finetune']
    split = state.record(number, 'split')
    problems = rejection_reasons(forgetting, decided['pool_after']['summary'], settings.pool_tolerance,
                                 _validation_figures(split, chosen), settings.max_addition,
                                 chosen['reason'] if chosen['fallback'] else None)
    if problems:
        return state.stage(number, 'accept', lambda: {
            'accepted': False, 'version': parent, 'reason': f'rejected: {"; ".join(problems)}; {parent} kept'})
    version = f'v{len(state.data["versions"])}'

    def work() -> Dict[str, Any]:
        folder = registry.version_folder(version)
        weights = copy_atomic(chosen['weights'], osp.join(folder, 'net_g.pth'))
        netd = trained['netd'].get(str(chosen['iteration']))
        netd = copy_atomic(netd, osp.join(folder, 'net_d.pth')) if netd else None
        opt = write_sr_options(osp.join(folder, 'sr.yml'), settings.gan().network_g(), weights, None)
        scores = {k: {'summary': decided[k]['summary'], 'detail': _means(decided[k]['detail'])}
                  for k in ('pool_after', 'heldout') if decided.get(k)}
        reason = f'{chosen["reason"]}; {forgetting["reason"]}'
        registry.add(ModelVersion(version, parent, weights, netd, opt, number, chosen['iteration'],
                                  {k: split[k] for k in ('train', 'validation')}, scores, reason), current=version)
        return {'accepted': True, 'version': version, 'reason': reason}

    def apply(data: Dict[str, Any], record: Dict[str, Any]) -> None:
        data['versions'].append(version)
        data['current'] = version
        data['fixed'] = _refreshed(data['fixed'], forgetting.get('figures')) + _refreshed(
            data['pool'], decided['pool_after'])
        data['pool'] = []

    return state.stage(number, 'accept', work, apply)


def _means(detail: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in detail.items() if k != 'per_image'}


def _refreshed(entries: List[Dict[str, Any]], figures: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Entries whose ``gan`` and ``mask`` become the new version's outputs and masks."""
    if figures is None:
        return list(entries)
    return [dict(e, gan=osp.join(figures['sr'], f'{e["name"]}.png'),
                 mask=osp.join(figures['masks'], f'{e["name"]}.png')) for e in entries]


def _score_round(settings: LoopSettings, state: LoopState, number: int, opt: str,
                 heldout: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Stages ``pool_after`` and ``heldout``: the candidate on the pool and on the held-out set."""
    root = _round_dir(settings, number)
    pool = state.stage(number, 'pool_after', lambda: score_model(
        settings, _set_folders(osp.join(root, 'pool')), opt, osp.join(root, 'pool_after')))
    held = None
    if heldout:
        held = state.stage(number, 'heldout', lambda: score_model(settings, heldout['folders'], opt,
                                                                  osp.join(root, 'heldout')))
    return {'pool_after': pool, 'heldout': held}


def _report(settings: LoopSettings, number: int, figures: Dict[str, Any], images: Dict[str, str], title: str) -> str:
    """Stage ``report``: the round's page (the held-out set, else the pool)."""
    from desra_basicsr.jobs import report
    return report.run(report.ReportSettings(
        out=osp.join(settings.out, 'report', f'round_{number:03d}'), lr=images['lr'], mse=images['mse'],
        gan=images['gan'], masks=images['mask'], finetuned=figures['sr'], finetuned_masks=figures['masks'],
        title=title, progress=False)).page


def run_round(settings: LoopSettings, state: LoopState, registry: ModelRegistry, number: int, lr: str,
              heldout: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """One round (see the module docstring); its stage records.

    Args:
        settings (LoopSettings): The loop's settings.
        state (LoopState): Its progress.
        registry (ModelRegistry): The model versions.
        number (int): The round.
        lr (str): The batch's LR folder.
        heldout (dict | None): :func:`_heldout_before`'s result.

    Returns:
        dict: Stage name -> record (stages that did not run are absent), and ``round``, ``lr``, ``pool``.
    """
    state.stage(number, 'start', lambda: {'lr': lr, 'model': state.data['current']})
    parent = state.record(number, 'start')['model']
    _detect_batch(settings, state, number, lr, registry.get(parent).opt)
    artifacts = sum(1 for e in state.data['pool'] if e['artifact'])
    if state.record(number, 'skip') or (state.record(number, 'split') is None and artifacts < settings.min_pool):
        state.stage(number, 'skip', lambda: {'reason': _skip_reason(settings, state, number, artifacts)})
        return _round_record(state, number)
    state.stage(number, 'split', lambda: _split(settings, state.data['pool'], number))
    decided = {'finetune': _finetune(settings, state, registry, number, parent)}
    decided['choose'] = _choose(settings, state, number, decided['finetune'])
    decided['forgetting'] = _forgetting(settings, state, number, decided['choose']['opt'])
    decided.update(_score_round(settings, state, number, decided['choose']['opt'], heldout))
    _accept(settings, state, registry, number, decided)
    images = heldout['folders'] if heldout else _set_folders(osp.join(_round_dir(settings, number), 'pool'))
    shown = decided['heldout'] or decided['pool_after']
    state.stage(number, 'report', lambda: {'page': _report(
        settings, number, shown, images, f'desra loop, round {number}: {"held-out" if heldout else "pool"} images '
        f'before and after {decided["choose"]["iteration"]} fine-tune iterations')})
    return _round_record(state, number)


def _skip_reason(settings: LoopSettings, state: LoopState, number: int, artifacts: int) -> str:
    found = state.record(number, 'detect')
    if not found['artifacts']:
        head = f'no image of this batch ({found["images"]}) has artifacts'
    else:
        head = f'{len(found["artifacts"])} of {found["images"]} images of this batch have artifacts'
    return (f'{head}; the pool holds {artifacts} image(s) with artifacts, fewer than --min-pool {settings.min_pool}: '
            'no fine-tune this round')


def _round_record(state: LoopState, number: int) -> Dict[str, Any]:
    return dict(state.stages(number), round=number, current=state.data['current'],
                pool=sum(1 for e in state.data['pool'] if e['artifact']))


def run(settings: LoopSettings, on_round: Optional[Callable[[Dict[str, Any]], None]] = None) -> LoopResult:
    """Run the loop (see the module docstring).

    Args:
        settings (LoopSettings): Models, batches, held-out set, the length rule and the rounds.
        on_round (Callable | None): Called with each round's record when it ends (default: print its table).

    Returns:
        LoopResult: The rounds, the current version and the manifest.

    Raises:
        DesraSettingsError: For unusable settings (see :func:`check_inputs`), or an ``out`` holding a loop with
            other settings or other files (:meth:`LoopSettings.files`), before any work.
        DesraInputError: When a stage's job failed on some image.
    """
    check_inputs(settings)
    os.makedirs(settings.out, exist_ok=True)
    state = LoopState(settings.out, settings.recorded(), list(settings.batches), settings.files())
    state.save()
    registry = ModelRegistry(osp.join(settings.out, 'models'))
    state.stage(0, 'template', lambda: _write_template(settings, osp.join(settings.out, 'options', 'template.yml')))
    state.stage(0, 'origin', lambda: _register_origin(settings, registry))
    heldout = _heldout_before(settings, state, registry)
    show = on_round or (lambda record: print(format_round(record, heldout), flush=True))
    rounds = []
    for number, lr in batches(settings, state):
        rounds.append(run_round(settings, state, registry, number, lr, heldout))
        show(rounds[-1])
    _write_index(settings.out, rounds)
    return LoopResult(settings.out, rounds, state.data['current'], registry.path,
                      {k: heldout[k] for k in ('images', 'area')} if heldout else None)


def _figures_row(label: str, figures: Dict[str, Any]) -> str:
    s, d = figures['summary'], figures['detail']
    removal = f'{s["removal_rate"]:.1f}' if s['n_regions_before'] else 'n/a'
    detail = 'n/a' if d.get('std_ratio') is None else f'{d["std_ratio"]:.3f}'
    return (f'{label:<28}{s["images"]:>7d}{removal:>10}{s["addition_rate"]:>11.1f}{s["area_before"]:>14.2f}'
            f'{s["area_after"]:>7.2f}{detail:>8}')


def format_round(record: Dict[str, Any], heldout: Optional[Dict[str, Any]] = None) -> str:
    """A round's printed table: removal, addition, area and detail per set, the decision and the current version.

    Args:
        record (dict): :func:`run_round`'s result.
        heldout (dict | None): The held-out set before the first round (``images``, ``area``).

    Returns:
        str: The lines.
    """
    found = record['detect']
    lines = [f'\n=== round {record["round"]}: {found["images"]} images, {len(found["artifacts"])} with artifacts '
             f'(area {found["area"]:.2f} %) with {record["start"]["model"]} ===']
    if 'skip' in record:
        lines.append(record['skip']['reason'])
    else:
        lines.append(f'{"set":<28}{"images":>7}{"removal %":>10}{"addition %":>11}{"area % before":>14}{"after":>7}'
                     f'{"detail":>8}')
        for key, label in (('heldout', 'held-out'), ('pool_after', 'pool (trained + validation)')):
            if record.get(key):
                lines.append(_figures_row(label, record[key]))
        if record['forgetting'].get('figures'):
            lines.append(_figures_row('fixed in earlier rounds', record['forgetting']['figures']))
        lines.append(f'fine-tune: {record["choose"]["iteration"]} iterations ({record["choose"]["reason"]})')
        accept = record['accept']
        lines.append(f'{"accepted as " + accept["version"] if accept["accepted"] else "not accepted"}: '
                     f'{accept["reason"]}')
    lines.append(f'current model: {record["current"]}')
    return '\n'.join(lines)


def _write_index(out: str, rounds: List[Dict[str, Any]]) -> None:
    """``OUT/report/index.html``: each round's table and a link to its page."""
    parts = ['<!DOCTYPE html><html><head><meta charset="utf-8"><title>desra loop</title></head><body>',
             '<h1>desra loop</h1>']
    for record in rounds:
        parts.append(f'<h2>Round {record["round"]}</h2><pre>{html.escape(format_round(record))}</pre>')
        if 'report' in record:
            page = osp.relpath(record['report']['page'], osp.join(out, 'report'))
            parts.append(f'<p><a href="{html.escape(page)}">images of round {record["round"]}</a></p>')
    parts.append('</body></html>')
    with atomic_write_path(osp.join(out, 'report', 'index.html')) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write('\n'.join(parts))
