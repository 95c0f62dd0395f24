"""DeSRA fine-tuning (paper section 3.3): a GAN-SR model fine-tuned on (real LR, pseudo-GT) pairs.

:class:`DeSRAFinetuneModel` is BasicSR's ``SRGANModel`` with what fine-tuning a released Real-ESRGAN, LDL or SwinIR
model needs:

* the base method's objective, unchanged: pixel (``pixel_opt``), perceptual (``perceptual_opt``) and GAN
  (``gan_opt``) losses; Real-ESRGAN's ``l1_gt_usm`` / ``percep_gt_usm`` / ``gan_gt_usm`` switches (USM-sharpened
  targets, off unless set); LDL's artifact loss when ``artifacts_opt`` (LDL's key; BasicSR's ``ldl_opt`` is
  accepted too) is set: a pixel loss weighted by LDL's refined artifact map (local variance of the residual in a
  7x7 window, scaled by the patch-level variance^(1/5), kept where ``|R_G| >= |R_EMA|``; BasicSR's
  ``get_refined_artifact_map``), with the EMA generator evaluated under ``torch.no_grad()``;
* ``mask_pixel_opt`` (our extension, off by default): a pixel loss averaged over the artifact mask only
  (the dataset's ``mask``), to stress the regions the pseudo-GT repairs;
* EMA (``ema_decay``), ``net_d_init_iters`` warm-up of a fresh discriminator while G is held (LDL and SwinIR ship
  no discriminator; G then runs without autograd, so no graph of G is kept), CPU and DDP (gloo / nccl) - every
  tensor lives on ``self.device``, and every rank logs the same loss keys (``l_g_mask_pix`` is 0 for a batch
  without mask pixels, computed without a host synchronisation), as BasicSR's ``reduce_loss_dict`` needs;
* ``train.tf32`` (default true): TF32 matmuls and cuDNN convolutions on Ampere and later GPUs
  (``torch.set_float32_matmul_precision('high')``, ``torch.backends.cudnn.allow_tf32``); false keeps strict fp32;
* validation through BasicSR's hooks; metrics additionally receive ``img_mse`` (the MSE-SR reference, when the
  validation dataset gives ``mse``) so ``desra_artifact_ratio`` and ``psnr`` against pseudo-GT run side by side;
  inputs are padded to the generator's ``window_size`` (SwinIR) in :meth:`test`;
* clear errors before any iteration: missing pretrained files, missing ``param_key``, mismatched keys or shapes
  (strict loading), a perceptual loss without ``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` (nothing is
  ever downloaded).
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional

import torch
from tqdm import tqdm

from basicsr.archs.vgg_arch import VGG_PRETRAIN_PATH
from basicsr.losses import build_loss
from basicsr.losses.loss_util import get_refined_artifact_map
from basicsr.metrics import calculate_metric
from basicsr.models.srgan_model import SRGANModel
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.img_process_util import USMSharp
from basicsr.utils.registry import MODEL_REGISTRY
from desra_basicsr.checkpoints import load_weights, weights_source
from desra_basicsr.constants import LDL_KSIZE
from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.inference import pad_to_multiple

#: The model's registered name (``model_type``).
FINETUNE_MODEL = 'DeSRAFinetuneModel'

#: Keys of the ``train`` block that BasicSR's ``SRGANModel`` reads.
SRGAN_TRAIN_KEYS = frozenset({
    'ema_decay', 'optim_g', 'optim_d', 'scheduler', 'total_iter', 'warmup_iter', 'pixel_opt', 'perceptual_opt',
    'gan_opt', 'net_d_iters', 'net_d_init_iters'
})


def _artifacts_opt(train_opt: dict) -> Optional[dict]:
    """LDL loss options: ``artifacts_opt`` (LDL's name) or ``ldl_opt`` (BasicSR's name), not both."""
    if train_opt.get('artifacts_opt') and train_opt.get('ldl_opt'):
        raise DesraSettingsError('train.artifacts_opt: set either train.artifacts_opt or train.ldl_opt (the same LDL '
                                 'loss), not both')
    return train_opt.get('artifacts_opt') or train_opt.get('ldl_opt')


def check_pretrained_files(opt: dict) -> None:
    """Check that the pretrained networks the options name (``path.pretrain_network_*``) exist.

    Args:
        opt (dict): BasicSR options (paths relative to the working directory, as BasicSR opens them).

    Raises:
        DesraSettingsError: Naming the missing file and its option.
    """
    finetune = opt.get('model_type') == FINETUNE_MODEL
    for key, load_path in sorted((opt.get('path') or {}).items()):
        if key.startswith('pretrain_network_') and load_path is not None and not osp.isfile(load_path):
            network = key[len('pretrain_'):]
            source = weights_source(load_path)
            todo = f'{source} and put it there' if source else 'put the weights there'
            if finetune and network == 'network_g':
                todo += ('; a DeSRA fine-tune starts from the GAN-SR model whose artifacts you detected, never from '
                         'random weights')
            else:
                todo += f', or set path.{key}: ~ to start from random weights'
            raise DesraSettingsError(f'{osp.abspath(load_path)}: pretrained {network} file not found (path.{key}); '
                                     f'{todo}')


def check_vgg_file(opt: dict) -> None:
    """Check that the VGG19 weights of a perceptual loss exist (BasicSR would download them).

    BasicSR builds the VGG extractor for any ``train.perceptual_opt`` (even with zero weights).

    Args:
        opt (dict): BasicSR options.

    Raises:
        DesraSettingsError: Naming the file and where to get it.
    """
    if opt.get('is_train', True) and (opt.get('train') or {}).get('perceptual_opt') and not osp.isfile(
            VGG_PRETRAIN_PATH):
        raise DesraSettingsError(
            f'{osp.abspath(VGG_PRETRAIN_PATH)}: VGG19 weights for the perceptual loss not found '
            f'(train.perceptual_opt); {weights_source(VGG_PRETRAIN_PATH)} and put it at {VGG_PRETRAIN_PATH} under '
            'the working directory (nothing is downloaded while training)')


def check_finetune_options(opt: dict) -> None:
    """Check files and settings a fine-tune needs, before any network is built.

    Args:
        opt (dict): Parsed BasicSR options.

    Raises:
        DesraSettingsError: Naming the missing file or the inconsistent option.
    """
    check_pretrained_files(opt)
    check_vgg_file(opt)
    if not opt.get('is_train', True):
        return
    train_opt = opt.get('train') or {}
    if _artifacts_opt(train_opt) and not train_opt.get('ema_decay', 0) > 0:
        raise DesraSettingsError('train.artifacts_opt: the LDL artifact loss compares net_g with its EMA; set '
                                 'train.ema_decay > 0 (LDL uses 0.999)')
    absent = [
        name for name, present in (('network_d', 'network_d' in opt), ('train.gan_opt', 'gan_opt' in train_opt),
                                   ('train.optim_d', 'optim_d' in train_opt)) if not present
    ]
    if absent:
        raise DesraSettingsError(f'model_type: DeSRAFinetuneModel fine-tunes a GAN and needs {", ".join(absent)}; '
                                 'add them (see options/finetune_swinir_desra.yml for a fresh UNetDiscriminatorSN)')
    train_set = (opt.get('datasets') or {}).get('train') or {}
    if (train_opt.get('mask_pixel_opt') and train_set.get('type') == 'PseudoGTPairedDataset'
            and not train_set.get('return_mask', False)):
        raise DesraSettingsError('train.mask_pixel_opt: needs the artifact masks in the training batches; set '
                                 'datasets.train.return_mask: true')


@MODEL_REGISTRY.register()
class DeSRAFinetuneModel(SRGANModel):
    """SRGANModel for DeSRA fine-tuning of released GAN-SR models (see module docstring).

    Args:
        opt (dict): Parsed BasicSR options.
    """

    #: Keys of the ``train`` block: SRGANModel's and this model's own (``desra_basicsr/train.py`` warns about others).
    TRAIN_KEYS = SRGAN_TRAIN_KEYS | {'tf32', 'mask_pixel_opt', 'artifacts_opt', 'ldl_opt'}

    #: Checks of the options, run by ``desra_basicsr/train.py`` before BasicSR creates the experiment folder.
    check_options = staticmethod(check_finetune_options)

    def __init__(self, opt: dict) -> None:
        check_finetune_options(opt)
        if opt.get('is_train', True):
            tf32 = bool((opt.get('train') or {}).get('tf32', True))
            torch.set_float32_matmul_precision('high' if tf32 else 'highest')
            torch.backends.cudnn.allow_tf32 = tf32
        super().__init__(opt)

    # ------------------------------------------------------------------------------------------ loading weights
    def load_network(self, net: torch.nn.Module, load_path: str, strict: bool = True, param_key: str = 'params'):
        """Load weights like BasicSR, but fail with a clear message on a wrong key or mismatched parameters.

        Args:
            net (nn.Module): Network (bare or wrapped).
            load_path (str): Checkpoint file.
            strict (bool): Require identical parameter names and shapes.
            param_key (str): Key of the state dict inside the checkpoint (``params``, ``params_ema``); falls back
                to ``params`` like BasicSR when absent; ignored for a bare state dict (SwinIR's older releases).

        Raises:
            DesraInputError: Unreadable file, missing key, or (strict) missing / unexpected / mis-shaped parameters.
        """
        bare = self.get_bare_model(net)
        key, problems = load_weights(bare, load_path, param_key, strict, fallback=('params', ))
        if problems:
            get_root_logger().warning(f'Loading {load_path} non-strictly: {problems}')
        get_root_logger().info(f'Loading {bare.__class__.__name__} model from {load_path}, with param key: [{key}].')

    # ---------------------------------------------------------------------------------------------- training
    def init_training_settings(self) -> None:
        super().init_training_settings()
        train_opt = self.opt['train']
        artifacts_opt = _artifacts_opt(train_opt)
        self.cri_ldl = build_loss(artifacts_opt).to(self.device) if artifacts_opt else None
        mask_opt = train_opt.get('mask_pixel_opt')
        self.cri_mask_pix = build_loss(mask_opt).to(self.device) if mask_opt else None
        self.gt_usm_for = {key: bool(self.opt.get(f'{key}_gt_usm', False)) for key in ('l1', 'percep', 'gan')}
        self.usm_sharpener = USMSharp().to(self.device) if any(self.gt_usm_for.values()) else None
        if self.cri_pix is None and self.cri_perceptual is None and self.cri_mask_pix is None:
            get_root_logger().warning('No pixel or perceptual loss: the generator is trained by the GAN loss only.')

    def feed_data(self, data: dict) -> None:
        self.lq = data['lq'].to(self.device, non_blocking=True)
        if 'gt' in data:
            self.gt = data['gt'].to(self.device, non_blocking=True)
        # only the masked pixel loss reads the mask; only validation metrics read the MSE-SR reference
        use_mask = self.is_train and getattr(self, 'cri_mask_pix', None) is not None and 'mask' in data
        self.mask = data['mask'].to(self.device, non_blocking=True) if use_mask else None
        self.mse = data['mse'].to(self.device, non_blocking=True) if 'mse' in data else None

    def _targets(self) -> Dict[str, torch.Tensor]:
        """Targets of the L1, perceptual and GAN losses (USM-sharpened where Real-ESRGAN's switches say so)."""
        sharp = self.usm_sharpener(self.gt.contiguous()) if self.usm_sharpener is not None else None
        return {key: sharp if use else self.gt for key, use in self.gt_usm_for.items()}

    def optimize_parameters(self, current_iter: int) -> None:
        if self.cri_mask_pix is not None and self.mask is None:
            raise DesraInputError('train.mask_pixel_opt needs artifact masks: the training dataset gives no "mask" '
                                  '(set dataroot_mask and return_mask: true)')
        targets = self._targets()
        for p in self.net_d.parameters():
            p.requires_grad = False

        update_g = current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters
        if update_g:
            self.optimizer_g.zero_grad()
            self.output = self.net_g(self.lq)
        else:  # warm-up of D (or a D-only iteration): no graph of G is built
            with torch.no_grad():
                self.output = self.net_g(self.lq)

        l_g_total = 0
        loss_dict = OrderedDict()
        if update_g:
            if self.cri_pix:
                l_g_pix = self.cri_pix(self.output, targets['l1'])
                l_g_total += l_g_pix
                loss_dict['l_g_pix'] = l_g_pix
            if self.cri_ldl:
                with torch.no_grad():
                    output_ema = self.net_g_ema(self.lq)
                pixel_weight = get_refined_artifact_map(self.gt, self.output, output_ema, LDL_KSIZE)
                l_g_artifacts = self.cri_ldl(torch.mul(pixel_weight, self.output), torch.mul(pixel_weight, self.gt))
                l_g_total += l_g_artifacts
                loss_dict['l_g_artifacts'] = l_g_artifacts
            if self.cri_mask_pix:
                l_g_mask_pix = self._mask_pixel_loss()
                l_g_total += l_g_mask_pix
                loss_dict['l_g_mask_pix'] = l_g_mask_pix
            if self.cri_perceptual:
                l_g_percep, l_g_style = self.cri_perceptual(self.output, targets['percep'])
                if l_g_percep is not None:
                    l_g_total += l_g_percep
                    loss_dict['l_g_percep'] = l_g_percep
                if l_g_style is not None:
                    l_g_total += l_g_style
                    loss_dict['l_g_style'] = l_g_style
            fake_g_pred = self.net_d(self.output)
            l_g_gan = self.cri_gan(fake_g_pred, True, is_disc=False)
            l_g_total += l_g_gan
            loss_dict['l_g_gan'] = l_g_gan

            l_g_total.backward()
            self.optimizer_g.step()

        for p in self.net_d.parameters():
            p.requires_grad = True
        self.optimizer_d.zero_grad()
        real_d_pred = self.net_d(targets['gan'])
        l_d_real = self.cri_gan(real_d_pred, True, is_disc=True)
        loss_dict['l_d_real'] = l_d_real
        loss_dict['out_d_real'] = torch.mean(real_d_pred.detach())
        l_d_real.backward()
        fake_d_pred = self.net_d(self.output.detach())
        l_d_fake = self.cri_gan(fake_d_pred, False, is_disc=True)
        loss_dict['l_d_fake'] = l_d_fake
        loss_dict['out_d_fake'] = torch.mean(fake_d_pred.detach())
        l_d_fake.backward()
        self.optimizer_d.step()

        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def _mask_pixel_loss(self) -> torch.Tensor:
        """``mask_pixel_opt`` averaged over the mask pixels of the batch; 0 (with zero gradient) when there are none.

        Decided on the device: a batch without mask pixels is weighted by ones (so the loss's weighted mean is
        finite) and then multiplied by 0, so no rank waits for a host copy and every rank logs the key.
        """
        has_mask = self.mask.sum() > 0
        weight = torch.where(has_mask, self.mask, torch.ones_like(self.mask))
        return self.cri_mask_pix(self.output, self.gt, weight=weight) * has_mask.to(self.output.dtype)

    # ------------------------------------------------------------------------------------------- validation
    def test(self) -> None:
        """Super-resolve ``self.lq`` with the EMA generator (or net_g), padding to ``window_size`` if set."""
        window = self.opt['network_g'].get('window_size')
        scale = self.opt.get('scale', 1)
        h, w = self.lq.shape[-2:]
        lq = pad_to_multiple(self.lq, window or 1)
        # the bare module: a DDP-wrapped net_g would broadcast its buffers, a collective only this rank calls
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)
        was_training = net.training
        net.eval()
        with torch.no_grad():
            self.output = net(lq)[..., :h * scale, :w * scale]
        net.train(was_training)

    def nondist_validation(self, dataloader, current_iter: int, tb_logger, save_img: bool) -> None:
        """BasicSR's SR validation; metrics also get ``img_mse`` when the dataset gives MSE-SR references."""
        dataset_name = dataloader.dataset.opt['name']
        metrics_opt = self.opt['val'].get('metrics')
        if metrics_opt is not None:
            self._initialize_best_metric_results(dataset_name)
            self.metric_results = {metric: 0 for metric in metrics_opt}
        pbar = tqdm(total=len(dataloader), unit='image') if self.opt['val'].get('pbar', False) else None
        count = 0
        for val_data in dataloader:
            img_name = osp.splitext(osp.basename(val_data['lq_path'][0]))[0]
            self.feed_data(val_data)
            self.test()
            metric_data = {'img': tensor2img([self.output.detach().cpu()])}
            if hasattr(self, 'gt'):
                metric_data['img2'] = tensor2img([self.gt.detach().cpu()])
                del self.gt
            if self.mse is not None:
                metric_data['img_mse'] = tensor2img([self.mse.detach().cpu()])
            del self.lq, self.output
            self.mask = self.mse = None
            if save_img:
                self._save_validation_image(metric_data['img'], img_name, dataset_name, current_iter)
            if metrics_opt is not None:
                for name, metric_opt in metrics_opt.items():
                    self.metric_results[name] += calculate_metric(metric_data, metric_opt)
            count += 1
            if pbar is not None:
                pbar.update(1)
                pbar.set_description(f'Test {img_name}')
        if pbar is not None:
            pbar.close()
        if metrics_opt is not None:
            for metric in self.metric_results:
                self.metric_results[metric] /= max(count, 1)
                self._update_best_metric_result(dataset_name, metric, self.metric_results[metric], current_iter)
            self._log_validation_metric_values(current_iter, dataset_name, tb_logger)

    def _save_validation_image(self, img, img_name: str, dataset_name: str, current_iter: int) -> None:
        if self.opt['is_train']:
            path = osp.join(self.opt['path']['visualization'], img_name, f'{img_name}_{current_iter}.png')
        else:
            suffix = self.opt['val'].get('suffix') or self.opt['name']
            path = osp.join(self.opt['path']['visualization'], dataset_name, f'{img_name}_{suffix}.png')
        imwrite(img, path)

    def get_current_visuals(self) -> Dict[str, torch.Tensor]:
        visuals = super().get_current_visuals()
        if getattr(self, 'mse', None) is not None:
            visuals['mse'] = self.mse.detach().cpu()
        return visuals
