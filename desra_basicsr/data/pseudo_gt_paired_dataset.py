"""Real LR images paired with DeSRA pseudo-GT (paper section 3.3), for BasicSR training and validation.

Two ways to give the pseudo-GT:

* precomputed: ``dataroot_gt`` holds ``y_pseudo`` images (e.g. written by ``desra pseudo-gt``); ``dataroot_mask``
  (artifact masks) and ``dataroot_mse`` (MSE-SR outputs, the reference of the ``desra_artifact_ratio`` metric)
  are optional;
* on the fly: ``dataroot_mse`` + ``dataroot_gan`` + ``dataroot_mask`` are merged by the transform named in
  ``transform`` (default :class:`~desra_basicsr.data.artifact_mask_transform.ArtifactMaskTransform`, eq. 10).
  The mask weight is computed on the full image (dilation / feathering look beyond a crop); the merge itself is
  pixel-wise and runs on the cropped, augmented patch only.

Conventions of BasicSR's ``PairedImageDataset``: ``io_backend`` (``disk`` or ``lmdb``; with lmdb every root is an
``.lmdb`` folder and keys are file stems), ``meta_info_file`` (names of HR-side files, relative to ``dataroot_gt``
or ``dataroot_gan``) or folder pairing, ``filename_tmpl`` (LR stem from HR stem, e.g. ``'{}x4'``), ``gt_size``,
``scale``, ``use_hflip``, ``use_rot``, ``mean`` / ``std``. Images are paired by file stem (extensions may differ,
e.g. JPEG LR and PNG masks).

Each sample holds ``lq``, ``gt`` (3xHxW float32 RGB in [0, 1] before mean/std), ``mask`` (1xHxW float32 merge
weight, cropped and augmented with the same window; present when masks are given), ``mse`` (when MSE-SR outputs
are given) and the paths ``lq_path``, ``gt_path`` (the pseudo-GT or, on the fly, the GAN-SR file), ``mask_path``,
``mse_path``, ``gan_path``. Masks travel as ``HxWx1`` arrays through ``paired_random_crop`` and ``augment``.

Every pair is checked when the dataset is built: partners present, HR size = ``scale`` x LR size, mask size = HR
size, LR at least ``gt_size / scale`` in the training phase. Non-binary masks are thresholded at 127 with one
warning per dataset.
"""
import os.path as osp
import warnings
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
import torch
from torch.utils import data as data
from torchvision.transforms.functional import normalize

from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, get_root_logger, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from desra_basicsr.data.artifact_mask_transform import build_transform
from desra_basicsr.errors import DesraInputError
from desra_basicsr.image_io import list_images, stem, to_bgr_uint8

# Sample keys that are HR-size images (in this order after ``lq``); the mask is handled separately.
HR_IMAGE_KEYS = ('gt', 'mse', 'gan')


def _stem_index(folder: str) -> Dict[str, str]:
    """Map file stem -> path for the images directly inside ``folder`` (duplicate stems are an error)."""
    index: Dict[str, str] = {}
    for name in list_images(folder):
        key = stem(name)
        if key in index:
            raise DesraInputError(f'{osp.join(folder, name)}: ambiguous, {index[key]} has the same stem')
        index[key] = osp.join(folder, name)
    return index


def _lmdb_keys(folder: str) -> List[str]:
    """Keys (file stems) of a BasicSR lmdb folder, read from its ``meta_info.txt``."""
    meta = osp.join(folder, 'meta_info.txt')
    if not folder.endswith('.lmdb') or not osp.isfile(meta):
        raise DesraInputError(f'{folder}: io_backend lmdb needs an .lmdb folder with meta_info.txt')
    with open(meta, 'r') as f:
        return [stem(line.split(' ')[0]) for line in f if line.strip()]


def decode_image(content: bytes, path: str) -> np.ndarray:
    """Decode image bytes to ``HxWx3`` uint8 BGR with :mod:`desra_basicsr.image_io`'s conversion rule.

    Args:
        content (bytes): Encoded image.
        path (str): File (or lmdb key) named in errors.

    Returns:
        np.ndarray: The image.
    """
    img = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise DesraInputError(f'{path}: cannot decode image (unreadable or corrupt file)')
    return to_bgr_uint8(img, path)


def decode_mask(content: bytes, path: str) -> Tuple[np.ndarray, bool]:
    """Decode mask bytes: first channel, > 127 is artifact (as :func:`desra_basicsr.image_io.read_mask`).

    Args:
        content (bytes): Encoded mask image.
        path (str): File (or lmdb key) named in errors.

    Returns:
        tuple: ``(mask, binary)``: ``HxW`` bool mask, and whether the file held only two values (0 and max).
    """
    raw = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0:
        raise DesraInputError(f'{path}: cannot decode mask (unreadable or corrupt file)')
    if raw.ndim == 3:
        raw = raw[:, :, 0]
    top = 65535 if raw.dtype == np.uint16 else 255
    binary = bool(np.isin(raw, (0, top)).all()) if raw.dtype in (np.uint8, np.uint16) else False
    return raw > (127 * 257 if raw.dtype == np.uint16 else 127), binary


@DATASET_REGISTRY.register()
class PseudoGTPairedDataset(data.Dataset):
    """Real LR images paired with DeSRA pseudo-GT, precomputed or merged on the fly (see module docstring).

    Args:
        opt (dict): Dataset options. Keys: ``dataroot_lq``; ``dataroot_gt`` or ``dataroot_mse`` +
            ``dataroot_gan`` + ``dataroot_mask``; optional ``dataroot_mask`` / ``dataroot_mse`` with
            ``dataroot_gt``; ``transform`` (dict with ``type``, default ArtifactMaskTransform); ``io_backend``;
            ``meta_info_file``; ``filename_tmpl`` (default ``'{}'``); ``gt_size``, ``use_hflip``, ``use_rot``
            (training phase); ``mean``, ``std``; ``scale`` and ``phase`` (set by BasicSR).
    """

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        self.scale = int(opt['scale'])
        self.phase = opt.get('phase', 'train')
        self.mean, self.std = opt.get('mean'), opt.get('std')
        self.filename_tmpl = opt.get('filename_tmpl', '{}')
        self.io_backend_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        self.transform = build_transform(opt.get('transform'))
        self.folders = self._folders(opt)
        self.on_the_fly = 'gan' in self.folders
        self.file_client: Optional[FileClient] = None
        self.paths = self._pair()
        if not self.paths:
            hr_root = self.folders['gan' if self.on_the_fly else 'gt']
            raise DesraInputError(f'{hr_root}: empty dataset, no image pairs found')
        self._validate()

    # ----------------------------------------------------------------------------------------------- building
    @staticmethod
    def _folders(opt: dict) -> Dict[str, str]:
        name = opt.get('name', 'PseudoGTPairedDataset')
        roots = {key: opt.get(f'dataroot_{key}') for key in ('lq', 'gt', 'mse', 'gan', 'mask')}
        if not roots['lq']:
            raise DesraInputError(f'{name}: dataroot_lq is required')
        if roots['gt'] and roots['gan']:
            raise DesraInputError(f'{name}: give either dataroot_gt (precomputed pseudo-GT) or dataroot_mse + '
                                  'dataroot_gan + dataroot_mask (merged on the fly), not both')
        if not roots['gt']:
            absent = [f'dataroot_{key}' for key in ('mse', 'gan', 'mask') if not roots[key]]
            if absent:
                raise DesraInputError(f'{name}: without dataroot_gt, on-the-fly pseudo-GT needs {", ".join(absent)}')
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
            index = {key: _stem_index(folder) for key, folder in self.folders.items()}
            meta = self.opt.get('meta_info_file')
            if meta:
                if not osp.isfile(meta):
                    raise DesraInputError(f'{meta}: meta_info_file not found')
                with open(meta, 'r') as f:
                    names = [line.strip().split(' ')[0] for line in f if line.strip()]
                for name in names:
                    if not osp.isfile(osp.join(self.folders[hr_key], name)):
                        raise DesraInputError(f'{osp.join(self.folders[hr_key], name)}: listed in {meta} but missing')
                hr_stems = [stem(name) for name in names]
            else:
                hr_stems = sorted(index[hr_key])
        paths = []
        for hr_stem in hr_stems:
            entry = {f'{hr_key}_path': index[hr_key][hr_stem]}
            wanted = [('lq', self.filename_tmpl.format(hr_stem))] + [(key, hr_stem) for key in others]
            for key, key_stem in wanted:
                if key_stem not in index[key]:
                    raise DesraInputError(f'{entry[f"{hr_key}_path"]}: no partner named {key_stem}.* in '
                                          f'{self.folders[key]} (dataroot_{key})')
                entry[f'{key}_path'] = index[key][key_stem]
            paths.append(entry)
        return paths

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
                out['mask'], out['mask_binary'] = decode_mask(content, path)
            else:
                out[key] = decode_image(content, path)
        return out

    def _validate(self) -> None:
        """Decode every sample once and check sizes and masks (errors name the file)."""
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
            if self.phase == 'train' and gt_size and min(h, w) * self.scale < gt_size:
                raise DesraInputError(f'{entry["lq_path"]}: LR {w}x{h} is smaller than gt_size {gt_size} / scale '
                                      f'{self.scale}')
            if 'mask' in sample and not sample['mask_binary']:
                non_binary.append(entry['mask_path'])
        self.file_client = None  # lmdb environments must be opened in each worker, not pickled
        if non_binary:
            message = (f'{non_binary[0]}: mask is not binary (thresholded at 127); {len(non_binary)} of '
                       f'{len(self.paths)} masks in {self.folders["mask"]} are like this')
            warnings.warn(message)
            get_root_logger().warning(message)

    # ------------------------------------------------------------------------------------------------ loading
    def __getitem__(self, index: int) -> dict:
        entry = self.paths[index]
        sample = self._read(entry)
        hr_keys = [key for key in HR_IMAGE_KEYS if key in sample]
        hrs = [sample[key].astype(np.float32) / 255. for key in hr_keys]
        weight = self.transform.weight(sample['mask'])[:, :, None] if 'mask' in sample else None
        if weight is not None:
            hrs.append(weight)
        lq = sample['lq'].astype(np.float32) / 255.

        if self.phase == 'train':
            hrs, lq = paired_random_crop(hrs, lq, self.opt['gt_size'], self.scale, entry['lq_path'])
            hrs = list(hrs) if isinstance(hrs, list) else [hrs]
            *hrs, lq = augment(hrs + [lq], self.opt.get('use_hflip', False), self.opt.get('use_rot', False))

        if weight is not None:
            weight = hrs.pop()
        images = dict(zip(hr_keys, hrs))
        if self.on_the_fly:
            images['gt'] = self.transform.merge(images['mse'], images.pop('gan'), weight)

        result = {}
        keys = ['lq'] + [key for key in ('gt', 'mse') if key in images]
        tensors = img2tensor([lq] + [images[key] for key in keys[1:]], bgr2rgb=True, float32=True)
        for key, tensor in zip(keys, tensors):
            if self.mean is not None or self.std is not None:
                normalize(tensor, self.mean, self.std, inplace=True)
            result[key] = tensor
        if weight is not None:
            result['mask'] = torch.from_numpy(np.ascontiguousarray(weight.transpose(2, 0, 1)))
        for key in self.folders:
            result[f'{key}_path'] = entry[f'{key}_path']
        if self.on_the_fly:
            result['gt_path'] = entry['gan_path']
        return result

    def __len__(self) -> int:
        return len(self.paths)
