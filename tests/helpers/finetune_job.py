"""Settings of tiny DeSRA fine-tunes through :mod:`desra_basicsr.jobs.finetune` (the tiny Real-ESRGAN twin)."""
import os.path as osp
from typing import Any, Dict

from helpers.finetune import TINY_OPTIONS, load_options, make_tiny_data, save_weights

TEMPLATE = TINY_OPTIONS['realesrgan']


def tiny_data(root: str) -> Dict[str, str]:
    """Tiny data and start weights under ``root``; returns the folders and files a fine-tune takes.

    Args:
        root (str): Folder to write into.

    Returns:
        dict: ``train`` and ``val`` (folders by ``lq``, ``mse``, ``gan``, ``mask``), ``generator``,
        ``discriminator``.
    """
    opt = load_options(TEMPLATE)
    make_tiny_data(root)
    save_weights(opt, root)
    data = osp.join(root, 'datasets', 'desra_tiny')
    return {
        'train': {key: osp.join(data, 'train', key) for key in ('lq', 'mse', 'gan', 'mask')},
        'val': {key: osp.join(data, 'val', key) for key in ('lq', 'mse', 'gan', 'mask')},
        'generator': osp.join(root, opt['path']['pretrain_network_g']),
        'discriminator': osp.join(root, opt['path']['pretrain_network_d']),
    }


def tiny_settings(data: Dict[str, Any], out: str, vgg19: str, **changes: Any):
    """:class:`FinetuneSettings` of a 4-iteration CPU fine-tune on :func:`tiny_data`, checkpoints every 2.

    Args:
        data (dict): :func:`tiny_data`'s result.
        out (str): Output folder.
        vgg19 (str): The random VGG19 file of the ``vgg19_file`` fixture.
        **changes: Other fields.

    Returns:
        FinetuneSettings: The settings.
    """
    from desra_basicsr.jobs.finetune import FinetuneSettings
    fields = dict(template=TEMPLATE, out=out, generator=data['generator'], discriminator=data['discriminator'],
                  iters=4, checkpoint_every=2, vgg19=vgg19, progress=False,
                  **{f'dataroot_{key}': folder for key, folder in data['train'].items()})
    fields.update(changes)
    return FinetuneSettings(**fields)
