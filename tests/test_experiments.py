"""Every experiment notebook runs end to end through papermill at `smoke` size, from the embedded mini set alone; so do
the paths only `paper` takes, through `paper_smoke`."""
import json
import pytest
import kdnotes
from pathlib import Path
from kdnotes.cli import experiments, run_experiment
from kdnotes.presets import PRESETS
from conftest import kdnotes as run_kdnotes

@pytest.mark.parametrize('experiment', experiments())
def test_smoke_run_writes_a_complete_results_folder(experiment, tmp_path, no_data_env):
    out = tmp_path/'results'/experiment/'smoke'
    r = run_kdnotes('run', experiment, '--preset', 'smoke', '--device', 'cpu', '--out', out, cwd=tmp_path, env=no_data_env)
    assert r.returncode == 0, r.stderr[-3000:]
    for f in ['metrics.json', 'provenance.json', f'{experiment}.ipynb', 'tables/comparison.md', 'tables/summary.md']:
        assert (out/f).is_file(), f
    assert list((out/'figures').glob('*.png'))
    prov = json.loads((out/'provenance.json').read_text())
    assert prov['preset'] == 'smoke' and prov['command'].startswith(f'kdnotes run {experiment}')
    assert Path(prov['kdnotes_path']) == Path(kdnotes.__file__).parent    # the kernel ran this kdnotes
    assert sorted(p.name for p in out.parent.iterdir()) == ['smoke']        # no temporary folder left behind

def test_failed_run_leaves_no_results_folder(tmp_path, no_data_env, monkeypatch):
    monkeypatch.setenv('KDNOTES_CACHE', no_data_env['KDNOTES_CACHE'])
    out = tmp_path/'004_base'/'smoke'
    with pytest.raises(Exception, match='seeds=\\[\\]'): run_experiment('004_base', 'smoke', 'cpu', out, seeds=[], progress=False)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []    # refused before any folder was made, or nothing left

# what each `paper_smoke` run must show of the paths only `paper` takes
PAPER_PATHS = {'003_vid': lambda m: 'strong_teacher' in m['rows'] and all(set(h) == {'study', 'full'} for h in m['histories'].values()),
               '002_cifar10': lambda m: {'resnet18', 'cnn'} <= {r.rsplit('_', 1)[-1] for r in m['histories']}
                                        and all(set(h) == {'first10112', 'full'} for h in m['histories'].values()),
               '000_kd_alpha': lambda m: m['settings']['teacher']['arch'] == 'resnet50',
               'mtt': lambda m: m['settings']['zca'] and m['settings']['dataset'] == 'cifar10-jpeg',
               '000_kd_mtt': lambda m: m['settings']['zca'] and any(r.startswith('kd_') for r in m['histories'])}

def test_every_paper_smoke_is_checked():
    assert sorted(PAPER_PATHS) == sorted(e for e, by in PRESETS.items() if 'paper_smoke' in by)

@pytest.mark.parametrize('experiment', sorted(PAPER_PATHS))
def test_paper_paths_run_at_smoke_size(experiment, tmp_path, no_data_env):
    out = tmp_path/'results'/experiment/'paper_smoke'
    r = run_kdnotes('run', experiment, '--preset', 'paper_smoke', '--device', 'cpu', '--out', out, cwd=tmp_path, env=no_data_env)
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((out/'metrics.json').read_text())
    assert metrics['preset'] == 'paper_smoke' and PAPER_PATHS[experiment](metrics), sorted(metrics['histories'])
