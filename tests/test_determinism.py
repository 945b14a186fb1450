"The same seed on a CPU gives identical metrics run to run: each training path, run twice at `smoke` size."
import json
import pytest
from conftest import kdnotes

# one experiment per training path: stacked `fit`, VID's `fit_stacked`, MTT's experts/distillation/evaluation,
# the GTN meta-gradients, the hypergradient and spline meta-parameters
PATHS = ['004_base', '003_vid', 'mtt', '001_gtn', '002_synthetic']

def measured(out):
    "What a run measured: its rows and learning curves (not its wall times)."
    m = json.loads((out/'metrics.json').read_text())
    return {k: m[k] for k in ('rows', 'histories')}

@pytest.mark.parametrize('experiment', PATHS)
def test_same_seed_same_metrics(experiment, tmp_path, no_data_env):
    runs = []
    for i in range(2):
        out = tmp_path/f'run{i}'/experiment/'smoke'
        env = no_data_env | {'KDNOTES_CACHE': str(tmp_path/f'cache{i}')}   # a fresh cache: experts retrained too
        r = kdnotes('run', experiment, '--preset', 'smoke', '--device', 'cpu', '--out', out, cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        runs.append(measured(out))
    assert runs[0] == runs[1]
