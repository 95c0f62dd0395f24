"""Real LR images paired with DeSRA pseudo-GT (paper section 3.3), for BasicSR training and validation.

Two ways to give the pseudo-GT:

* precomputed: ``dataroot_gt`` holds ``y_pseudo`` images (e.g. written by ``desra pseudo-gt``); ``dataroot_mask``
  (artifact masks) and ``dataroot_mse`` (MSE-SR outputs, the reference of the ``desra_artifact_ratio`` metric)
  are optional;
* on the fly: ``dataroot_mse`` + ``dataroot_gan`` + ``dataroot_mask`` are merged by the transform named in
  ``transform`` (default :class:`~desra_basicsr.data.artifact_mask_transform.ArtifactMaskTransform`, eq. 10).
  In training the crop window is chosen first (BasicSR's ``paired_random_crop`` rule) and everything runs on the
  crop: uint8 slicing and augmentation, then float conversion, the mask weight (on the crop widened by the
  transform's ``support``, the pixels that dilation / feathering look at, which gives the full-image weight
  exactly) and the pixel-wise merge.

Conventions of BasicSR's ``PairedImageDataset``: ``io_backend`` (``disk`` or ``lmdb``; with lmdb every root is an
``.lmdb`` folder and keys are file stems), ``meta_info_file`` (names of HR-side files directly in ``dataroot_gt``
or ``dataroot_gan``, no sub-folder paths) or folder pairing, ``filename_tmpl`` (LR stem from HR stem, e.g.
``'{}x4'``), ``gt_size`` (required in the training phase, a multiple of ``scale``), ``scale``, ``use_hflip``,
``use_rot``, ``mean`` / ``std``. Folders are flat and images are paired by file stem (extensions may differ, e.g. JPEG
LR and PNG masks).

Each sample holds ``lq``, ``gt`` (3xHxW float32 RGB in [0, 1] before mean/std), ``mask`` (1xHxW float32 merge
weight, cropped and augmented with the same window; when masks are given and ``return_mask`` is true), ``mse``
(when MSE-SR outputs are given and ``return_mse`` is true) and the paths ``lq_path``, ``gt_path`` (the pseudo-GT
or, on the fly, the GAN-SR file), ``mask_path``, ``mse_path``, ``gan_path``. Mask weights travel as ``HxWx1``
arrays through BasicSR's ``augment``.

Data loading at GPU speed: ``return_mse`` / ``return_mask`` default to false in the training phase (training uses
neither, except ``train.mask_pixel_opt``, which needs ``return_mask: true``) and true otherwise, so the loader
neither collates nor copies them. ``keep_in_memory: true`` keeps the decoded set (uint8 images, bool masks) in
shared memory: decoded once when the dataset is built, then shared by the loader's workers (forked or spawned)
instead of each worker decoding four full-size files per sample; it needs about ``(2 or 3) x 3 + 1`` bytes per
HR pixel of the set. BasicSR's loader options ``persistent_workers`` and ``pin_memory`` keep workers alive across
epochs and pin batches for the copy to the GPU.

Every pair is checked when the dataset is built: partners present, HR size = ``scale`` x LR size, mask size = HR
size, LR at least ``gt_size / scale`` in the training phase. Non-binary masks are thresholded at 127 with one
warning per dataset. Masks are grey (one channel, or colour channels that agree) unless ``mask_channel`` names the
channel that holds the mask (0 red, 1 green, 2 blue, 3 alpha; see :func:`desra_basicsr.image_io.decode_mask`).
A dataset that cannot be used at all (a required root absent, a bad option, a missing partner file, no pairs) raises
:class:`~desra_basicsr.errors.DesraSettingsError`; a file that fails (size, content) :class:`DesraInputError`.
"""
import os.path as osp
import random
import warnings
from typing import Dict, List, Optional

import numpy as np
import torch
from torch.utils import data as data
from torchvision.transforms.functional import normalize

from basicsr.data.transforms import augment
from basicsr.utils import FileClient, get_root_logger, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from desra_basicsr.data.artifact_mask_transform import build_transform
from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.image_io import MASK_CHANNELS, decode_image, decode_mask, stem, stem_index

# Sample keys that are HR-size images (in this order after ``lq``); the mask is handled separately.
HR_IMAGE_KEYS = ('gt', 'mse', 'gan')

#: Keys BasicSR's training pipeline reads from every dataset block (``build_dataloader``, the sampler, the
#: prefetcher) or sets itself (``phase``, ``scale``).
LOADER_KEYS = frozenset({
    'name', 'type', 'phase', 'scale', 'use_shuffle', 'num_worker_per_gpu', 'batch_size_per_gpu',
    'dataset_enlarge_ratio', 'prefetch_mode', 'num_prefetch_queue', 'pin_memory', 'persistent_workers'
})


def _lmdb_keys(folder: str) -> List[str]:
    """Keys (file stems) of a BasicSR lmdb folder, read from its ``meta_info.txt``."""
    meta = osp.join(folder, 'meta_info.txt')
    if not folder.endswith('.lmdb') or not osp.isfile(meta):
        raise DesraSettingsError(f'{folder}: io_backend lmdb needs an .lmdb folder with meta_info.txt')
    with open(meta, 'r') as f:
        return [stem(line.split(' ')[0]) for line in f if line.strip()]


@DATASET_REGISTRY.register()
class PseudoGTPairedDataset(data.Dataset):
    """Real LR images paired with DeSRA pseudo-GT, precomputed or merged on the fly (see module docstring).

    Args:
        opt (dict): Dataset options. Keys: ``dataroot_lq``; ``dataroot_gt`` or ``dataroot_mse`` +
            ``dataroot_gan`` + ``dataroot_mask``; optional ``dataroot_mask`` / ``dataroot_mse`` with
            ``dataroot_gt``; ``transform`` (dict with ``type``, default ArtifactMaskTransform); ``io_backend``;
            ``meta_info_file``; ``filename_tmpl`` (default ``'{}'``); ``gt_size`` (required, a multiple of
            ``scale``), ``use_hflip``, ``use_rot`` (training phase); ``mean``, ``std``; ``return_mse``,
            ``return_mask`` (default: false in the training phase, true otherwise); ``keep_in_memory`` (default
            false); ``mask_channel`` (default None: grey masks); ``scale`` and ``phase`` (set by BasicSR).
    """

    #: Every key of this dataset's option block (``desra_basicsr/train.py`` warns about any other).
    OPTION_KEYS = LOADER_KEYS | {
        'dataroot_lq', 'dataroot_gt', 'dataroot_mse', 'dataroot_gan', 'dataroot_mask', 'transform', 'io_backend',
        'meta_info_file', 'filename_tmpl', 'gt_size', 'use_hflip', 'use_rot', 'mean', 'std', 'return_mse',
        'return_mask', 'keep_in_memory', 'mask_channel'
    }

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        self.scale = int(opt['scale'])
        self.phase = opt.get('phase', 'train')
        self.mean, self.std = opt.get('mean'), opt.get('std')
        self.filename_tmpl = opt.get('filename_tmpl', '{}')
        self.mask_channel = opt.get('mask_channel')
        if self.mask_channel is not None and self.mask_channel not in MASK_CHANNELS:
            raise DesraSettingsError(f'datasets.{self.phase}.mask_channel: {self.mask_channel!r} is not a channel; '
                                     'choose 0 (red), 1 (green), 2 (blue) or 3 (alpha)')
        gt_size = opt.get('gt_size')
        if self.phase == 'train':
            if gt_size is None:
                raise DesraSettingsError(f'datasets.{self.phase}.gt_size: required for training (the HR patch size, '
                                         f'a multiple of scale {self.scale})')
            if not isinstance(gt_size, int) or gt_size <= 0 or gt_size % self.scale:
                raise DesraSettingsError(f'datasets.{self.phase}.gt_size: {gt_size!r} is not a positive multiple of '
                                         f'scale {self.scale} (LR and HR patches would not align)')
        self.io_backend_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        try:
            self.transform = build_transform(opt.get('transform'))
        except (TypeError, ValueError) as error:
            raise DesraSettingsError(f'datasets.{self.phase}.transform: {error}') from error
        self.folders = self._folders(opt)
        self.on_the_fly = 'gan' in self.folders
        self.file_client: Optional[FileClient] = None
        self.return_mse = bool(opt.get('return_mse', self.phase != 'train')) and 'mse' in self.folders
        self.return_mask = bool(opt.get('return_mask', self.phase != 'train')) and 'mask' in self.folders
        self.cache: Optional[List[Dict[str, torch.Tensor]]] = [] if opt.get('keep_in_memory', False) else None
        self.paths = self._pair()
        if not self.paths:
            hr_root = self.folders['gan' if self.on_the_fly else 'gt']
            raise DesraSettingsError(f'{hr_root}: empty dataset, no image pairs found')
        self._validate()

    # ----------------------------------------------------------------------------------------------- building
    @staticmethod
    def _folders(opt: dict) -> Dict[str, str]:
        name = opt.get('name', 'PseudoGTPairedDataset')
        roots = {key: opt.get(f'dataroot_{key}') for key in ('lq', 'gt', 'mse', 'gan', 'mask')}
        if not roots['lq']:
            raise DesraSettingsError(f'{name}: dataroot_lq is required')
        if roots['gt'] and roots['gan']:
            raise DesraSettingsError(f'{name}: give either dataroot_gt (precomputed pseudo-GT) or dataroot_mse + '
                                     'dataroot_gan + dataroot_mask (merged on the fly), not both')
        if not roots['gt']:
            absent = [f'dataroot_{key}' for key in ('mse', 'gan', 'mask') if not roots[key]]
            if absent:
                raise DesraSettingsError(f'{name}: without dataroot_gt, on-the-fly pseudo-GT needs '
                                         f'{", ".join(absent)}')
        return {key: root for key, root in roots.items() if root}

    def _pair(self) -> List[Dict[str, str]]:
        """One dict of paths (``<key>_path``) per sample, the HR-side root deciding which samples exist."""
        hr_key = 'gan' if self.on_the_fly else 'gt'
        others = [key for key in self.folders if key not in ('lq', hr_key)]
        if self.io_backend_opt['type'] == 'lmdb':
            self.io_backend_opt['db_paths'] = list(self.folders.values())
            self.io_backend_opt['client_keys'] = list(self.folders.keys())
            index = {key: {k: k for k in _lmdb_keys(folder)} for key, folder in self.folders.items()}
            hr_stems = sorted(index[hr_key])
        else:
            index = {key: stem_index(folder) for key, folder in self.folders.items()}
            meta = self.opt.get('meta_info_file')
            if meta:
                hr_stems = self._meta_stems(meta, hr_key, index[hr_key])
            else:
                hr_stems = sorted(index[hr_key])
        paths = []
        for hr_stem in hr_stems:
            entry = {f'{hr_key}_path': index[hr_key][hr_stem]}
            wanted = [('lq', self.filename_tmpl.format(hr_stem))] + [(key, hr_stem) for key in others]
            for key, key_stem in wanted:
                if key_stem not in index[key]:
                    raise DesraSettingsError(f'{entry[f"{hr_key}_path"]}: no partner named {key_stem}.* in '
                                             f'{self.folders[key]} (datasets.{self.phase}.dataroot_{key}); add it, '
                                             'or remove the unpaired file')
                entry[f'{key}_path'] = index[key][key_stem]
            paths.append(entry)
        return paths

    def _meta_stems(self, meta: str, hr_key: str, hr_index: Dict[str, str]) -> List[str]:
        """Stems of the HR-side files that ``meta`` lists, one per line (first field), in its order.

        Folders are flat (pairing is by stem), so each listed name must be an image directly in the HR root; a
        sub-folder path (as in Real-ESRGAN's meta files) would otherwise pair the top-level file of the same stem.

        Args:
            meta (str): The ``meta_info_file``.
            hr_key (str): The HR-side folder key (``gt`` or ``gan``).
            hr_index (dict[str, str]): Stem to path of the images in that folder.

        Returns:
            list[str]: The listed stems.

        Raises:
            DesraSettingsError: If ``meta`` is missing, or a listed file is missing or not an image directly in the
                HR root (naming the line).
        """
        if not osp.isfile(meta):
            raise DesraSettingsError(f'{meta}: meta_info_file not found')
        hr_root = self.folders[hr_key]
        stems = []
        with open(meta, 'r') as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                name = line.strip().split(' ')[0]
                path = osp.join(hr_root, name)
                if not osp.isfile(path):
                    raise DesraSettingsError(f'{path}: listed in {meta} (line {number}) but missing')
                if osp.normpath(hr_index.get(stem(name), '')) != osp.normpath(path):
                    raise DesraSettingsError(
                        f'{meta}: line {number}: {name} is not an image directly in {hr_root} '
                        f'(datasets.{self.phase}.dataroot_{hr_key}); folders are flat and paired by stem, so list '
                        'file names without folders')
                stems.append(stem(name))
        return stems

    def _client(self) -> FileClient:
        if self.file_client is None:
            backend = dict(self.io_backend_opt)
            self.file_client = FileClient(backend.pop('type'), **backend)
        return self.file_client

    def _read(self, entry: Dict[str, str]) -> Dict[str, np.ndarray]:
        """Decode one sample's files: uint8 BGR images and the bool mask, plus ``mask_binary``."""
        client = self._client()
        out = {}
        for key in self.folders:
            path = entry[f'{key}_path']
            content = client.get(path, key)
            if key == 'mask':
                out['mask'], out['mask_binary'] = decode_mask(content, path, self.mask_channel,
                                                              f'datasets.{self.phase}.mask_channel')
            else:
                out[key] = decode_image(content, path)
        return out

    def _sample(self, index: int) -> Dict[str, np.ndarray]:
        """One sample's uint8 images and bool mask, from the in-memory set or decoded from the files."""
        if self.cache is not None:
            return {key: tensor.numpy() for key, tensor in self.cache[index].items()}
        sample = self._read(self.paths[index])
        sample.pop('mask_binary', None)
        return sample

    def _validate(self) -> None:
        """Decode every sample once, check sizes and masks (errors name the file), fill the in-memory set."""
        gt_size = self.opt.get('gt_size')
        non_binary = []
        for entry in self.paths:
            sample = self._read(entry)
            h, w = sample['lq'].shape[:2]
            want = (h * self.scale, w * self.scale)
            for key in [k for k in HR_IMAGE_KEYS if k in sample] + (['mask'] if 'mask' in sample else []):
                if sample[key].shape[:2] != want:
                    raise DesraInputError(
                        f'{entry[f"{key}_path"]}: size {sample[key].shape[1]}x{sample[key].shape[0]} does not match '
                        f'LR {entry["lq_path"]} ({w}x{h}) at scale {self.scale} (expected {want[1]}x{want[0]})')
            if self.phase == 'train' and min(h, w) * self.scale < gt_size:
                raise DesraInputError(f'{entry["lq_path"]}: LR {w}x{h} is smaller than gt_size {gt_size} / scale '
                                      f'{self.scale}')
            if 'mask' in sample and not sample.pop('mask_binary'):
                non_binary.append(entry['mask_path'])
            if self.cache is not None:
                self.cache.append({key: torch.from_numpy(array).share_memory_() for key, array in sample.items()})
        self.file_client = None  # lmdb environments must be opened in each worker, not pickled
        if non_binary:
            message = (f'{non_binary[0]}: mask is not binary (thresholded at 127); {len(non_binary)} of '
                       f'{len(self.paths)} masks in {self.folders["mask"]} are like this')
            warnings.warn(message)
            get_root_logger().warning(message)

    # ------------------------------------------------------------------------------------------------ loading
    def _train_crop(self, sample: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Random ``gt_size`` crop (BasicSR's ``paired_random_crop`` window rule) of uint8 images; mask as weight.

        The weight is computed on the crop widened by the transform's ``support`` (clamped to the image), which
        equals the full-image weight inside the crop.
        """
        gt_size = self.opt['gt_size']
        lq_size = gt_size // self.scale
        h, w = sample['lq'].shape[:2]  # at least lq_size: checked when the dataset was built
        top, left = random.randint(0, h - lq_size), random.randint(0, w - lq_size)
        hr_top, hr_left = top * self.scale, left * self.scale
        # copies: augment flips in place, and the source may be the shared in-memory set
        out = {'lq': sample['lq'][top:top + lq_size, left:left + lq_size].copy()}
        for key in HR_IMAGE_KEYS:
            if key in sample:
                out[key] = sample[key][hr_top:hr_top + gt_size, hr_left:hr_left + gt_size].copy()
        if 'mask' in sample:
            mask = sample['mask']
            margin = self.transform.support
            y0, x0 = max(hr_top - margin, 0), max(hr_left - margin, 0)
            y1, x1 = min(hr_top + gt_size + margin, mask.shape[0]), min(hr_left + gt_size + margin, mask.shape[1])
            weight = self.transform.weight(mask[y0:y1, x0:x1])
            out['mask'] = weight[hr_top - y0:hr_top - y0 + gt_size, hr_left - x0:hr_left - x0 + gt_size, None].copy()
        return out

    def __getitem__(self, index: int) -> dict:
        entry = self.paths[index]
        sample = self._sample(index)
        if not self.on_the_fly:  # precomputed pseudo-GT: MSE-SR and mask are only passed through
            for key, wanted in (('mse', self.return_mse), ('mask', self.return_mask)):
                if not wanted:
                    sample.pop(key, None)
        if self.phase == 'train':
            sample = self._train_crop(sample)
            keys = list(sample)
            flipped = augment([sample[key] for key in keys], self.opt.get('use_hflip', False),
                              self.opt.get('use_rot', False))
            sample = dict(zip(keys, flipped))
        elif 'mask' in sample:
            sample['mask'] = self.transform.weight(sample['mask'])[:, :, None]
        weight = sample.pop('mask', None)
        images = {key: value.astype(np.float32) / 255. for key, value in sample.items()}
        if self.on_the_fly:
            images['gt'] = self.transform.merge(images['mse'], images.pop('gan'), weight)

        result = {}
        keys = ['lq', 'gt'] + (['mse'] if self.return_mse else [])
        tensors = img2tensor([images[key] for key in keys], bgr2rgb=True, float32=True)
        for key, tensor in zip(keys, tensors):
            if self.mean is not None or self.std is not None:
                normalize(tensor, self.mean, self.std, inplace=True)
            result[key] = tensor
        if self.return_mask:
            result['mask'] = torch.from_numpy(np.ascontiguousarray(weight.transpose(2, 0, 1)))
        for key in self.folders:
            result[f'{key}_path'] = entry[f'{key}_path']
        if self.on_the_fly:
            result['gt_path'] = entry['gan_path']
        return result

    def __len__(self) -> int:
        return len(self.paths)
