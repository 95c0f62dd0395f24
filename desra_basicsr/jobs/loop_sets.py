"""The models and image sets of ``desra loop`` (:mod:`desra_basicsr.jobs.loop`), and how a model is scored on a set.

* :class:`ModelSpec`: a generator as ``desra sr`` takes it (an option file, or an architecture with its weights);
  its ``network_g``, scale and family (which option template of ``options/`` fine-tunes it).
* :class:`ImageSet`: the images of a stage gathered into one folder per role (``lr``, ``mse``, ``gan``, ``mask``) by
  hard links (copies where links cannot be made), each image named ``r<round>_<stem>``, so that images of several
  batches that share a name stay apart.
* :func:`score_model`: super-resolve a set with a model, detect again, compare with the set's masks (the paper's
  Table 3: removal, addition, area) and measure the detail kept outside them
  (:mod:`desra_basicsr.evaluation.detail`).
"""
import inspect
import os
import os.path as osp
import shutil
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional

import yaml

from desra_basicsr.errors import DesraInputError, DesraSettingsError, settings_phase

#: Roles of an image set, one folder each.
ROLES = ('lr', 'mse', 'gan', 'mask')
#: Root of the source checkout (its ``options/`` folder holds the templates).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: Fine-tune option template of each generator family (``options/``), by ``network_g`` type.
TEMPLATES = {
    'RRDBNet': 'finetune_realesrgan_desra.yml',
    'SwinIR': 'finetune_swinir_desra.yml',
    'SRVGGNetCompact': 'demo_finetune_desra.yml',
}
#: The template of an RRDBNet whose weights file names LDL.
LDL_TEMPLATE = 'finetune_ldl_desra.yml'


@dataclass(frozen=True)
class ModelSpec:
    """A generator as ``desra sr`` takes it.

    Attributes:
        role (str): ``gan`` or ``mse``: the options are ``--<role>-opt`` etc.
        opt (str | None): BasicSR option file.
        arch (str | None): Registered architecture (with ``weights``).
        arch_opt (dict): Constructor arguments of ``arch``.
        weights (str | None): Generator weights (override the option file's).
        param_key (str | None): Checkpoint key.
    """
    role: str
    opt: Optional[str] = None
    arch: Optional[str] = None
    arch_opt: Dict[str, Any] = field(default_factory=dict)
    weights: Optional[str] = None
    param_key: Optional[str] = None

    def check(self) -> None:
        """One source: an option file, or an architecture with its weights."""
        flag = f'--{self.role}'
        if bool(self.opt) == bool(self.arch):
            raise DesraSettingsError(f'{flag}-opt / {flag}-arch: give exactly one of them')
        if self.arch and not self.weights:
            raise DesraSettingsError(f'{flag}-weights: required with {flag}-arch')
        for path in (self.opt, self.weights):
            if path and not osp.isfile(path):
                raise DesraSettingsError(f'{path}: {flag} file not found')

    def _options(self) -> Dict[str, Any]:
        with settings_phase():
            try:
                with open(self.opt, 'r') as f:
                    opt = yaml.safe_load(f)
            except (OSError, yaml.YAMLError) as err:
                raise DesraInputError(f'{self.opt}: --{self.role}-opt is not a readable option file ({err})') from err
        if not isinstance(opt, dict) or not isinstance(opt.get('network_g'), dict) or 'type' not in opt['network_g']:
            raise DesraSettingsError(f'{self.opt}: --{self.role}-opt has no network_g with a type')
        return opt

    def network_g(self) -> Dict[str, Any]:
        """BasicSR ``network_g``: the option file's, or ``arch`` with its arguments."""
        if self.arch:
            return {'type': self.arch, **self.arch_opt}
        return dict(self._options()['network_g'])

    def check_network(self) -> None:
        """Build the generator from its ``network_g`` without weights (cheap), so bad arguments are refused early.

        Raises:
            DesraSettingsError: For an unknown architecture or arguments it does not take, naming the option.
        """
        from desra_basicsr.inference import build_generator
        network_g = self.network_g()
        try:
            build_generator(network_g.pop('type'), network_g)
        except DesraSettingsError as err:
            source = f'--{self.role}-arch / --{self.role}-arch-opt' if self.arch else f'{self.opt}: network_g'
            raise DesraSettingsError(f'{source}: {err}') from err

    def weights_file(self) -> str:
        """The generator weights: ``weights``, else the option file's ``path.pretrain_network_g``."""
        found = self.weights or (self._options().get('path') or {}).get('pretrain_network_g')
        if not found:
            raise DesraSettingsError(f'{self.opt}: path.pretrain_network_g is empty and no --{self.role}-weights given')
        return osp.abspath(found)

    def key(self) -> Optional[str]:
        """The checkpoint key: ``param_key``, else the option file's ``path.param_key_g``."""
        if self.param_key or self.arch:
            return self.param_key
        return (self._options().get('path') or {}).get('param_key_g')

    def sr_fields(self) -> Dict[str, Any]:
        """The generator fields of :class:`desra_basicsr.jobs.sr.SRSettings`."""
        return {'opt': self.opt, 'arch': self.arch, 'arch_opt': dict(self.arch_opt), 'weights': self.weights,
                'param_key': self.param_key}


def scale_of(network_g: Mapping[str, Any]) -> Optional[int]:
    """The upscaling factor of a generator: its ``scale`` / ``upscale`` argument or that argument's default.

    Args:
        network_g (dict): BasicSR ``network_g``.

    Returns:
        int | None: The factor; None when the architecture names none.
    """
    for key in ('scale', 'upscale'):
        if key in network_g:
            return int(network_g[key])
    from basicsr.utils.registry import ARCH_REGISTRY
    name = next((n for n in (network_g['type'], f'{network_g["type"]}_basicsr') if n in ARCH_REGISTRY), None)
    if name is None:
        return None
    parameters = inspect.signature(ARCH_REGISTRY.get(name)).parameters
    for key in ('scale', 'upscale'):
        if key in parameters and parameters[key].default is not inspect.Parameter.empty:
            return int(parameters[key].default)
    return None


def check_twins(gan: ModelSpec, mse: ModelSpec) -> None:
    """Refuse an MSE-SR model whose scale differs from the GAN-SR model's.

    Args:
        gan (ModelSpec): The GAN-SR model.
        mse (ModelSpec): Its MSE-SR twin.

    Raises:
        DesraSettingsError: Naming both scales.
    """
    gan_scale, mse_scale = scale_of(gan.network_g()), scale_of(mse.network_g())
    if gan_scale and mse_scale and gan_scale != mse_scale:
        raise DesraSettingsError(f'--mse-{"opt" if mse.opt else "arch"}: the MSE-SR model upscales x{mse_scale}, the '
                                 f'GAN-SR model x{gan_scale}; give the MSE-SR twin of the GAN-SR model (same scale)')


def family_template(gan: ModelSpec) -> str:
    """The fine-tune option template of the GAN-SR model's family (Real-ESRGAN, LDL, SwinIR, the demo's).

    Args:
        gan (ModelSpec): The GAN-SR model.

    Returns:
        str: The template under ``options/``.

    Raises:
        DesraSettingsError: When the family has no template, or the templates are not there.
    """
    kind = gan.network_g()['type']
    name = TEMPLATES.get(kind)
    if name is None:
        raise DesraSettingsError(f'{kind}: no fine-tune option template for this architecture; give one with '
                                 f'--template (see options/finetune_*_desra.yml)')
    if kind == 'RRDBNet' and 'ldl' in osp.basename(gan.weights_file()).lower():
        name = LDL_TEMPLATE
    path = osp.join(REPO_ROOT, 'options', name)
    if not osp.isfile(path):
        raise DesraSettingsError(f'{path} not found: give the fine-tune option template with --template (the '
                                 'templates are in the options/ folder of the source checkout)')
    return path


def link_file(src: str, dst: str) -> None:
    """Hard-link ``src`` to ``dst`` (a copy across file systems); an existing ``dst`` is replaced."""
    if osp.lexists(dst):
        os.remove(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


@dataclass(frozen=True)
class ImageSet:
    """Images of several rounds gathered into one folder per role (see the module docstring).

    Attributes:
        root (str): The folder holding ``lr/``, ``mse/``, ``gan/`` and ``mask/``.
    """
    root: str

    def folder(self, role: str) -> str:
        """The folder of one role."""
        return osp.join(self.root, role)

    def gather(self, entries: Iterable[Mapping[str, Any]]) -> List[str]:
        """Link the entries' files in, replacing whatever the folders held.

        Args:
            entries (Iterable[dict]): Each with ``name`` and a path per role present.

        Returns:
            list[str]: The names, in order.
        """
        if osp.isdir(self.root):
            shutil.rmtree(self.root)
        names = []
        for entry in entries:
            for role in ROLES:
                if entry.get(role):
                    os.makedirs(self.folder(role), exist_ok=True)
                    link_file(entry[role], osp.join(self.folder(role), entry['name'] + osp.splitext(entry[role])[1]))
            names.append(entry['name'])
        return names


def measure_detail(gan: str, candidate: str, masks: str, mse: str) -> Dict[str, Any]:
    """Detail kept outside the masks by a candidate model, and by MSE-SR for reference.

    Args:
        gan (str): Folder of the outputs the masks were detected on.
        candidate (str): Folder of the candidate model's outputs (``<stem>.png``).
        masks (str): Folder of the masks (``<stem>.png``).
        mse (str): Folder of MSE-SR outputs (``<stem>.png``).

    Returns:
        dict: ``std_ratio``, ``mad`` (candidate against ``gan``), ``mse_std_ratio``, ``mse_mad`` (MSE-SR against
        ``gan``), means over the images, and ``per_image``.
    """
    from desra_basicsr.jobs.checkpoint_scores import detail_kept
    finetuned, twin = detail_kept(gan, candidate, masks), detail_kept(gan, mse, masks)
    return {
        'std_ratio': finetuned.mean('std_ratio'),
        'mad': finetuned.mean('mad'),
        'mse_std_ratio': twin.mean('std_ratio'),
        'mse_mad': twin.mean('mad'),
        'per_image': finetuned.per_image
    }
