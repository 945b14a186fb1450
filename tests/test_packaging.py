"The wheel carries the library, the embedded mini set and the experiment notebooks; the library matches the notebooks."
import os, shutil, subprocess, sys, zipfile
from pathlib import Path
from conftest import ROOT

def test_wheel_installs_and_runs_without_the_checkout(tmp_path):
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', tmp_path, ROOT], check=True)
    wheel = next(tmp_path.glob('kdnotes-*.whl'))
    names = zipfile.ZipFile(wheel).namelist()
    assert 'kdnotes/assets/mini.npz' in names and 'kdnotes/experiments/004_base.ipynb' in names
    site = tmp_path/'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index', '-q', '--target', site, wheel], check=True)
    code = ("import kdnotes, kdnotes.cli as c, kdnotes.data as d; print(kdnotes.__file__); print(c.experiments_dir()); "
            "print(len(d.load_dataset('fashion', 'mini')['train'])); c.main(['list'])")
    env = {k: v for k, v in os.environ.items() if k != 'KDNOTES_DATA'} | {'PYTHONPATH': str(site)}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    lib, nbs, n, listing = r.stdout.split('\n', 3)
    assert lib.startswith(str(site)) and nbs.startswith(str(site)) and n == '2000' and '004_base' in listing

def test_nbdev_export_and_clean_leave_the_tree_unchanged(tmp_path):
    for p in ['settings.ini', 'pyproject.toml', 'setup.py', 'README.md']: shutil.copy(ROOT/p, tmp_path)
    for d in ['nbs', 'kdnotes']: shutil.copytree(ROOT/d, tmp_path/d, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    bin_ = Path(sys.executable).parent
    for cmd in ['nbdev_export', 'nbdev_clean']: subprocess.run([bin_/cmd], cwd=tmp_path, env=env, check=True, capture_output=True)
    for d in ['nbs', 'kdnotes']:
        for f in (ROOT/d).rglob('*'):
            if f.is_file() and f.suffix in ('.py', '.ipynb') and '__pycache__' not in f.parts:
                assert (tmp_path/f.relative_to(ROOT)).read_bytes() == f.read_bytes(), f'{f.relative_to(ROOT)} is out of sync'
        for f in (tmp_path/d).rglob('*.py'):
            assert (ROOT/f.relative_to(tmp_path)).exists(), f'nbdev_export makes {f.relative_to(tmp_path)}, which is not committed'
