import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

def kdnotes(*args, cwd=None, env=None):
    "Run the `kdnotes` command of this environment; the completed process."
    exe = Path(sys.executable).with_name('kdnotes')
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env)

@pytest.fixture
def no_data_env(tmp_path):
    "An environment with no data folder and an empty cache: only the embedded mini set is there."
    env = {k: v for k, v in os.environ.items() if k != 'KDNOTES_DATA'}
    return env | {'KDNOTES_CACHE': str(tmp_path/'cache')}
