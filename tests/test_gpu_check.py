"""``benchmarks/gpu_check.py`` on a machine without CUDA: a clear stop, and its timing and report code on tiny CPU runs.

The GPU figures themselves come from ``make gpu-check`` on a GPU machine; here every timing function runs for real
on the CPU with tiny sizes and the report is written from those results.
"""
import subprocess
import sys

import pytest

from benchmarks import gpu_check
from desra_basicsr.detection.mmseg_segmenter import default_config_path
from helpers.paths import REPO_ROOT
from helpers.training import train_env

TINY_RRDB = ['num_in_ch=3', 'num_out_ch=3', 'num_feat=4', 'num_block=1', 'num_grow_ch=2', 'scale=4']


def test_cpu_only_machine_stops_with_a_message_and_writes_nothing(tmp_path):
    report = tmp_path / 'report.md'
    proc = subprocess.run([sys.executable, '-m', 'benchmarks.gpu_check', '--out', str(report)], cwd=REPO_ROOT,
                          env=train_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert 'gpu-check needs a CUDA GPU' in proc.stderr and 'Nothing was run' in proc.stderr
    assert not report.exists() and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_timings_and_report_on_cpu_with_tiny_sizes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no VGG19 file here: the fine-tune timing runs without perceptual loss
    root = str(tmp_path)
    timings = {
        'indicator': gpu_check.time_indicator('cpu', size=64, repeat=1),
        'detect_none': gpu_check.time_detect('cpu', root, size=64, pairs=1),
        'detect_seg': gpu_check.time_detect('cpu', root, size=64, pairs=1, config=default_config_path()),
        'finetune': gpu_check.time_finetune('cpu', root, batch=1, gt_size=32, iters=1, warmup=1, num_feat=4,
                                            num_block=1),
        'sr': gpu_check.time_sr('cpu', root, out_size=64, count=1, arch_opts=TINY_RRDB),
    }
    timings['data'] = gpu_check.time_data('cpu', root, timings['finetune']['s_per_iter'], workers=1, batches=1,
                                          lr_size=32, batch=2, gt_size=64)
    assert timings['indicator']['max_abs_diff'] < 1e-4 and timings['indicator']['speedup'] > 0
    assert timings['finetune']['perceptual'] is False and timings['finetune']['s_per_iter'] > 0
    assert 'fp16_images_per_min' not in timings['sr']  # fp16 is CUDA only
    # the runner and its summary on one real, fast CPU test (tests/gpu itself needs CUDA)
    target = 'tests/test_ncnn_converter.py::test_layout_matches_basicsr_rrdbnet'
    tests = gpu_check.run_gpu_tests(str(tmp_path / 'junit.xml'), [target])
    assert tests['returncode'] == 0
    assert [(c['name'], c['outcome']) for c in tests['cases']] == [('test_layout_matches_basicsr_rrdbnet', 'passed')]
    report = tmp_path / 'out' / 'report.md'
    gpu_check.write_report(str(report), gpu_check.machine_description('cpu'), tests, timings)
    text = report.read_text()
    assert 'tests/gpu: 1 passed (pytest exit 0' in text and '| test_layout_matches_basicsr_rrdbnet | passed |' in text
    assert f'**{timings["indicator"]["speedup"]:.0f}x** (target >= 100x)' in text
    assert f'**{timings["finetune"]["s_per_iter"]:.3f} s/iter**' in text and 'no perceptual' in text
    assert f'{timings["sr"]["fp32_images_per_min"]:.1f} images/min' in text
    assert 'segmentation none' in text and 'process RSS' in text
    assert 'segmentation segformer_mit-b5_8xb2-160k_ade20k-640x640.py' in text  # the config in mmseg's wheel
    share = timings['data']['share']['keep_in_memory'] * 100
    assert f'keep_in_memory {timings["data"]["rates"]["keep_in_memory"]:.1f} samples/s = {share:.1f} %' in text


def test_a_failing_timing_and_a_hung_test_run_still_leave_a_full_report(tmp_path, monkeypatch):
    """main() on the CPU with its steps replaced: one raises, the tests hang; everything else is reported."""
    hung = tmp_path / 'test_hangs.py'
    hung.write_text('import time\n\n\ndef test_hangs():\n    time.sleep(120)\n')
    given = {}

    def run_hung_tests(junit, timeout):
        given['timeout'] = timeout
        return real_run_gpu_tests(junit, [str(hung)], timeout=3)

    def fail(*args, **kwargs):
        raise RuntimeError('no kernel image is available for execution on the device')

    def data(device, root, s_per_iter, **kwargs):
        given['s_per_iter'] = s_per_iter
        return {'hr_size': 2048, 'batch': 12, 'gt_size': 256, 'workers': 4, 'rates': {'keep_in_memory': 600.0},
                'share': {'keep_in_memory': 12 / 600.0 / s_per_iter}}

    real_run_gpu_tests = gpu_check.run_gpu_tests
    monkeypatch.setattr(gpu_check, 'no_cuda_message', lambda: None)
    monkeypatch.setattr(gpu_check, 'run_gpu_tests', run_hung_tests)
    monkeypatch.setattr(gpu_check, 'time_indicator', fail)
    monkeypatch.setattr(gpu_check, 'time_detect', lambda *a, config=None, **k: {
        'size': 1024, 'pairs': 8, 'segmentation': 'seg' if config else 'none', 'images_per_min': 30.0, 'build_s': 1.0})
    monkeypatch.setattr(gpu_check, 'time_finetune', lambda *a, **k: {
        'batch': 12, 'gt_size': 256, 'num_feat': 64, 'num_block': 23, 'iters': 10, 'perceptual': False,
        's_per_iter': 0.5, 'peak_gib': 20.0, 'peak_kind': 'GPU memory allocated', 'projected_min_1000_4gpu': 8.3})
    monkeypatch.setattr(gpu_check, 'time_sr', lambda *a, **k: {
        'out_size': 1024, 'count': 8, 'fp32_images_per_min': 40.0})
    monkeypatch.setattr(gpu_check, 'time_data', data)
    report = tmp_path / 'report.md'
    assert gpu_check.main(['--out', str(report), '--device', 'cpu', '--budget', '0']) == 1
    assert given == {'timeout': 120.0, 's_per_iter': 0.5}  # the tests get at least 120 s; data uses the fine-tune
    text = report.read_text()
    assert '### indicator: failed' in text and 'no kernel image is available' in text
    assert '**0.500 s/iter**' in text and 'keep_in_memory 600.0 samples/s = 4.0 % of an iteration' in text
    assert 'segmentation seg' in text and 'segmentation none' in text and 'fp32 40.0 images/min' in text
    assert 'killed at its time limit' in text and '[gpu-check: pytest killed after 3 s]' in text
    assert 'basicsr 1.4.2' in text and 'numpy' in text  # the stack that ran, which may differ from the pins
