"""The code follows the project's flake8 settings (setup.cfg: BasicSR's, line length 120)."""
import subprocess
import sys

from helpers.paths import REPO_ROOT


def test_flake8_clean():
    proc = subprocess.run([sys.executable, '-m', 'flake8', 'desra_basicsr', 'tests', 'benchmarks', 'scripts'],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
