"""mmsegmentation backend of the segmenter interface (DeSRA-det step 3). The only detection module importing mmseg.

The default model is the one the DeSRA authors used: SegFormer mit-b5 trained on ADE20K at 640x640, config
``configs/segformer/segformer_mit-b5_8xb2-160k_ade20k-640x640.py`` shipped inside the mmsegmentation wheel
(``mmseg/.mim/``), with the checkpoint users download from mmsegmentation's model zoo (the config folder's
``metafile.yaml``): ``segformer_mit-b5_640x640_160k_ade20k_20210801_121243-41d2845b.pth``. Nothing is downloaded
here: the backbone's ``init_cfg`` (a URL) is cleared and the weights come only from the given checkpoint.

Images of any size are resized as the config's test pipeline says (``Resize`` with ``keep_ratio``; for the
default config the long side to at most 2048 and the short side to at most 640), run through the model's
``inference`` (``whole`` or ``slide`` mode from its ``test_cfg``), and the logits are resized back to the image
size bilinearly before the per-pixel argmax, as mmseg does, but only where the label can change (so a 4096x4096
image never holds 150x4096x4096 logits).
"""
import os.path as osp
from typing import Optional, Tuple

import cv2
import numpy as np
import torch

from desra_basicsr.checkpoints import load_weights, read_checkpoint
from desra_basicsr.constants import SEGFORMER_CHECKPOINT_NAME, SEGFORMER_CONFIG_NAME
from desra_basicsr.detection.class_weights import ADE20K_CLASSES
from desra_basicsr.detection.segmenters import Segmenter
from desra_basicsr.errors import DesraInputError

CHECKPOINT_HELP = (f'download {SEGFORMER_CHECKPOINT_NAME} (SegFormer mit-b5, ADE20K, 640x640) from the '
                   'mmsegmentation model zoo: its URL is listed in configs/segformer/metafile.yaml and the SegFormer '
                   'README of mmsegmentation')

# Logit values gathered per band in ``_resize_argmax`` (bounds the band's memory to ~64 MiB of float32).
_BAND_VALUES = 1 << 24


def default_config_path() -> str:
    """Path of the SegFormer mit-b5 ADE20K 640x640 config inside the installed mmsegmentation wheel.

    Returns:
        str: The config file path.
    """
    import mmseg
    return osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', SEGFORMER_CONFIG_NAME)


def _test_scale(cfg) -> Optional[Tuple[int, int]]:
    """The ``scale`` of the ``Resize`` step (with ``keep_ratio``) of the config's test pipeline, if any."""
    pipeline = cfg.get('test_pipeline') or cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
    for step in pipeline:
        if step.get('type') == 'Resize' and step.get('keep_ratio', False) and step.get('scale'):
            return tuple(step['scale'])
    return None


def _source_coords(n_out: int, n_src: int, device: torch.device, dtype: torch.dtype):
    """Source indices and weights of a bilinear resize with ``align_corners=False`` (as ``F.interpolate``)."""
    pos = ((torch.arange(n_out, device=device, dtype=torch.float64) + 0.5) * (n_src / n_out) - 0.5).clamp(min=0)
    low = pos.floor().long().clamp(max=n_src - 1)
    high = (low + 1).clamp(max=n_src - 1)
    return low, high, (pos - low).to(dtype)


def _resize_argmax(logits: torch.Tensor, height: int, width: int) -> np.ndarray:
    """Argmax of the ``CxHxW`` logits resized bilinearly (``align_corners=False``) to ``height x width``.

    Equal to ``F.interpolate(logits, (height, width), mode='bilinear').argmax(0)`` without holding the resized
    logits: a pixel whose four source neighbours share one argmax keeps it (a convex combination of logit
    vectors that all peak at class k peaks at k), so logits are interpolated only where the neighbours disagree
    (label boundaries), a band of rows at a time.
    """
    channels, src_h, src_w = logits.shape
    src_labels = logits.argmax(0)
    y0, y1, wy = _source_coords(height, src_h, logits.device, logits.dtype)
    x0, x1, wx = _source_coords(width, src_w, logits.device, logits.dtype)
    pixels = logits.permute(1, 2, 0).reshape(src_h * src_w, channels)  # one contiguous logit vector per pixel
    labels = np.empty((height, width), np.int64)
    band = max(1, _BAND_VALUES // (channels * width))
    for top in range(0, height, band):
        rows = slice(top, min(height, top + band))
        upper, lower = src_labels[y0[rows]], src_labels[y1[rows]]
        out = upper[:, x0]
        mixed = (out != upper[:, x1]) | (out != lower[:, x0]) | (out != lower[:, x1])
        ii, jj = mixed.nonzero(as_tuple=True)
        if len(ii):
            ry0, ry1, rwy = y0[rows][ii] * src_w, y1[rows][ii] * src_w, wy[rows][ii, None]
            cx0, cx1, cwx = x0[jj], x1[jj], wx[jj, None]
            top_mix = pixels[ry0 + cx0] * (1 - cwx) + pixels[ry0 + cx1] * cwx
            bottom_mix = pixels[ry1 + cx0] * (1 - cwx) + pixels[ry1 + cx1] * cwx
            out[ii, jj] = (top_mix * (1 - rwy) + bottom_mix * rwy).argmax(1)
        labels[rows] = out.cpu().numpy()
    return labels


def offline_model_cfg(model_cfg):
    """Make an mmseg model config buildable offline on one device, in place: no download, no process group.

    Clears ``pretrained`` and every ``init_cfg`` that names a checkpoint (download URLs in the stock configs; the
    weights come from a checkpoint loaded later, or training starts from scratch), and replaces ``SyncBN`` by
    ``BN`` everywhere (SyncBN needs a process group; plain BN computes the same in eval mode and on one device).

    Args:
        model_cfg (mmengine.config.ConfigDict): The config's ``model`` entry.

    Returns:
        mmengine.config.ConfigDict: ``model_cfg`` itself.
    """

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get('type') == 'SyncBN':
                node['type'] = 'BN'
            inits = node.get('init_cfg')
            inits = inits if isinstance(inits, (list, tuple)) else [inits]
            if any(isinstance(init, dict) and 'checkpoint' in init for init in inits):
                node['init_cfg'] = None
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    model_cfg.pretrained = None
    walk(model_cfg)
    return model_cfg


class MMSegSegmenter(Segmenter):
    """Semantic segmentation with an mmsegmentation model.

    Args:
        config (str | None): mmseg config file; None uses :func:`default_config_path`.
        checkpoint (str | None): Model weights (required).
        device (str): ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        class_names (tuple[str, ...] | None): Class of each label; None takes the checkpoint's ``meta`` when it
            has one, else the ADE20K classes for a 150-class model.

    Raises:
        DesraInputError: Missing config or checkpoint, unreadable files, or a checkpoint that does not fit the
            config (missing weights, other class count).
    """
    name = 'mmseg'

    def __init__(self,
                 config: Optional[str] = None,
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 class_names: Optional[Tuple[str, ...]] = None) -> None:
        from mmengine.config import Config
        from mmseg.apis import init_model

        config = config or default_config_path()
        if not checkpoint:
            raise DesraInputError(f'--seg-checkpoint: the mmseg backend needs a checkpoint for {config}; for the '
                                  f'default config, {CHECKPOINT_HELP}')
        if not osp.isfile(checkpoint):
            raise DesraInputError(f'{checkpoint}: segmentation checkpoint not found; for the default config, '
                                  f'{CHECKPOINT_HELP}')
        if not osp.isfile(config):
            raise DesraInputError(f'{config}: mmseg config file not found')
        try:
            cfg = Config.fromfile(config)
        except Exception as err:  # noqa: B902  (mmengine raises many types for bad configs)
            raise DesraInputError(f'{config}: cannot read the mmseg config: {err}')
        if 'model' not in cfg or 'decode_head' not in cfg.model:
            raise DesraInputError(f'{config}: not an mmseg segmentation config (no model.decode_head)')
        offline_model_cfg(cfg.model)
        ckpt = read_checkpoint(checkpoint)
        # init_model clears the backbone's init_cfg (a download URL in the stock configs); the weights are loaded
        # here, strictly, so a checkpoint that does not fit the config is an error rather than a logged warning.
        model = init_model(cfg, checkpoint=None, device='cpu')
        try:
            load_weights(model, checkpoint, 'state_dict')
        except DesraInputError as err:
            raise DesraInputError(f'{err} (config: {config})') from err

        num_classes = model.decode_head.num_classes
        if class_names is None:
            meta = ckpt.get('meta') or {}
            names = (meta.get('dataset_meta') or {}).get('classes') or meta.get('CLASSES')
            if names is not None and len(names) == num_classes:
                class_names = tuple(str(n).strip() for n in names)
            elif num_classes == len(ADE20K_CLASSES):
                class_names = ADE20K_CLASSES
            else:
                class_names = tuple(f'class_{i}' for i in range(num_classes))
        if len(class_names) != num_classes:
            raise DesraInputError(f'{config}: the model has {num_classes} classes, {len(class_names)} names given')
        super().__init__(class_names=tuple(class_names), source=f'{config} + {checkpoint}')
        self.config_path = config
        self.checkpoint_path = checkpoint
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.test_scale = _test_scale(cfg)

    @torch.no_grad()
    def logits(self, img: np.ndarray) -> torch.Tensor:
        """The model's logits of an image, at the size the config's test pipeline resizes it to.

        Args:
            img (np.ndarray): ``HxWx3`` uint8 BGR image, any size.

        Returns:
            torch.Tensor: ``num_classes x h x w`` float logits on the model's device (``h x w`` the test size).
        """
        from mmcv import rescale_size
        from mmseg.structures import SegDataSample

        height, width = img.shape[:2]
        new_w, new_h = (width, height) if self.test_scale is None else rescale_size((width, height), self.test_scale)
        resized = img if (new_h, new_w) == (height, width) else cv2.resize(
            img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        meta = dict(img_shape=(new_h, new_w), ori_shape=(height, width), pad_shape=(new_h, new_w))
        # The model's data preprocessor converts BGR to RGB, normalises and pads as its config says.
        data = self.model.data_preprocessor({
            'inputs': [torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1).to(self.device)],
            'data_samples': [SegDataSample(metainfo=meta)]
        }, training=False)
        return self.model.inference(data['inputs'], [sample.metainfo for sample in data['data_samples']])[0]

    def segment(self, img: np.ndarray) -> np.ndarray:
        """Label map of an image, at the image size.

        Args:
            img (np.ndarray): ``HxWx3`` uint8 BGR image, any size.

        Returns:
            np.ndarray: ``HxW`` int64 labels in ``[0, num_classes)``.
        """
        return _resize_argmax(self.logits(img), img.shape[0], img.shape[1])
