"""`bench/gpu_check.sh --dry-run`: the GPU check's plan and its entry points, checked on a CPU in seconds."""
import os, shutil, subprocess, sys
from pathlib import Path
from conftest import ROOT

from kdnotes.cli import experiments
from kdnotes.presets import PRESETS

def dry_run(root:Path, env=None) -> subprocess.CompletedProcess:
    "`bench/gpu_check.sh --dry-run` of the tree at `root`, with this interpreter."
    env = dict(env or os.environ, PYTHON=sys.executable, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    return subprocess.run(['bash', str(root/'bench'/'gpu_check.sh'), '--dry-run'], capture_output=True, text=True, env=env, cwd=root)

def test_dry_run_lists_every_step_and_finds_every_entry_point():
    "Every experiment's paper_smoke run, the three benches and the two 004_base runs are planned; all entry points exist."
    r = dry_run(ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    with_paper_smoke = [e for e in experiments() if 'paper_smoke' in PRESETS[e]]
    assert with_paper_smoke
    for e in with_paper_smoke:
        assert f'kdnotes run {e} --preset paper_smoke --device cuda --out bench/results/gpu/runs/{e}-paper_smoke' in r.stdout
    for cmd in ('python bench/ensemble.py --device cuda', 'python bench/stacked.py --device cuda',
                'python bench/mtt.py --size paper --device cuda', 'kdnotes run 004_base --preset smoke --device cuda'):
        assert cmd in r.stdout, cmd
    assert r.stdout.count('--preset smoke --device cuda') == 2
    assert 'results/' not in r.stdout.replace('bench/results/', ''), 'a step writes into the committed results/'
    assert 'entry points: all present' in r.stdout

def test_dry_run_names_a_missing_script(tmp_path):
    "A tree without bench/stacked.py: the dry run fails and names it."
    (tmp_path/'bench').mkdir()
    for f in ('gpu_check.sh', 'ensemble.py', 'mtt.py'): shutil.copy(ROOT/'bench'/f, tmp_path/'bench'/f)
    r = dry_run(tmp_path)
    assert r.returncode == 1 and 'missing: bench/stacked.py' in r.stderr, (r.returncode, r.stderr[-2000:])

def test_unknown_argument_is_one_clear_error():
    r = subprocess.run(['bash', str(ROOT/'bench'/'gpu_check.sh'), '--fast'], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == "gpu_check: error: unknown argument '--fast'; expected --dry-run, --prepare, --out DIR or --tar FILE"
