"""`--executor ray` on a local cluster of two nodes of one CPU each, each node with a cache folder of its own (no disk
shared) and a Ray instance of this machine (its cache shared): smoke runs give the metrics of local runs, byte for byte,
even with a worker killed mid-unit; a unit that fails is named, the other experiments complete, the exit status is not 0; without Ray, one clear error."""
import json, os, signal, subprocess, sys, tempfile, time
from pathlib import Path
import pytest
from conftest import kdnotes
from cli_sandbox import run_main

import kdnotes.cli as cli
from kdnotes.core import RunStates
from kdnotes.presets import get_preset

def base_env(cache:Path) -> dict:
    "The environment of a run: no data folder (the embedded mini sets), the cache `cache`, one torch thread."
    return {k: v for k, v in os.environ.items() if k != 'KDNOTES_DATA'} | {'KDNOTES_CACHE': str(cache), 'OMP_NUM_THREADS': '1'}

@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    "A Ray cluster on this machine: a head without CPUs, two nodes of one CPU, each with a cache of its own; (address, caches)."
    pytest.importorskip('ray')
    from ray.cluster_utils import Cluster
    root = tmp_path_factory.mktemp('cluster')
    caches = [root/f'node{i}-cache' for i in range(2)]
    c = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0))
    for cache in caches: c.add_node(num_cpus=1, env_vars={'KDNOTES_CACHE': str(cache), 'OMP_NUM_THREADS': '1'})
    c.wait_for_nodes()
    yield c.address, caches
    c.shutdown()

@pytest.fixture(scope='module')
def local(tmp_path_factory):
    "The metrics.json of a local smoke run of an experiment, run once (`local(experiment)`)."
    root, done = tmp_path_factory.mktemp('local'), {}
    def metrics(experiment):
        if experiment not in done:
            out = root/experiment
            r = kdnotes('run', experiment, '--preset', 'smoke', '--device', 'cpu', '--out', out, cwd=root, env=base_env(root/'cache'))
            assert r.returncode == 0, r.stderr[-3000:]
            done[experiment] = (out/'metrics.json').read_text()
        return done[experiment]
    return metrics

def without_wall_times(text:str) -> dict:
    "metrics.json's content without the wall times `mtt` and `000_kd_mtt` record beside their metrics."
    return {k: v for k, v in json.loads(text).items() if k != 'timings'}

def ray_run(experiment, address, out, cache, **popen):
    "`kdnotes run EXPERIMENT --executor ray` on the cluster at `address`, from a driver whose cache is `cache`."
    argv = [Path(sys.executable).with_name('kdnotes'), 'run', experiment, '--preset', 'smoke', '--device', 'cpu', '--executor', 'ray',
            '--address', address, '--out', out]
    return subprocess.Popen(list(map(str, argv)), cwd=out.parent, env=base_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)

@pytest.mark.parametrize('experiment', ['mtt', '000_kd_mtt'])
def test_ray_run_gives_the_local_metrics(experiment, cluster, local, tmp_path):
    address, caches = cluster
    out = tmp_path/'results'/experiment
    out.parent.mkdir()
    p = ray_run(experiment, address, out, tmp_path/'driver-cache')
    stdout, stderr = p.communicate(timeout=900)
    assert p.returncode == 0, stderr[-3000:]
    ray_metrics, local_metrics = (out/'metrics.json').read_text(), local(experiment)
    assert without_wall_times(ray_metrics) == without_wall_times(local_metrics)
    assert ray_metrics.replace(' ', '').count('"timings"') == local_metrics.replace(' ', '').count('"timings"')
    prov = json.loads((out/'provenance.json').read_text())
    assert prov['command'].startswith(f'kdnotes run {experiment}') and (out/f'{experiment}.ipynb').is_file()
    assert not any((tmp_path/'driver-cache').glob('.units-*')), 'the scratch folder of the units is left behind'
    assert all(any(c.glob('units')) is False for c in caches)          # the nodes kept the units' results in scratch folders only

def unit_workers(caches) -> list[int]:
    "Process ids of this cluster's Ray workers running a unit that has started its notebook's kernel."
    pids = []
    for d in Path('/proc').iterdir():
        try:
            if not d.name.isdigit() or not (d/'cmdline').read_bytes().startswith(b'ray::run_unit'): continue
            if not any(f'KDNOTES_CACHE={c}'.encode() in (d/'environ').read_bytes() for c in caches): continue
            kernels = [k for k in Path('/proc').iterdir() if k.name.isdigit() and (k/'stat').read_text().rsplit(')', 1)[1].split()[1] == d.name
                       and b'ipykernel' in (k/'cmdline').read_bytes()]
        except OSError: continue
        if kernels: pids.append(int(d.name))
    return pids

def test_a_worker_killed_mid_unit_changes_nothing(cluster, local, tmp_path):
    "004_base through Ray, the worker of its first unit SIGKILLed while the unit's notebook runs: Ray runs the unit again."
    address, caches = cluster
    out = tmp_path/'results'/'004_base'
    out.parent.mkdir()
    p, killed, deadline = ray_run('004_base', address, out, tmp_path/'driver-cache'), None, time.time() + 300
    while killed is None and p.poll() is None and time.time() < deadline:
        workers = unit_workers(caches)
        if workers:
            time.sleep(2)                          # into the unit's notebook
            os.kill(workers[0], signal.SIGKILL); killed = workers[0]
        time.sleep(.2)
    stdout, stderr = p.communicate(timeout=900)
    assert killed is not None, 'no unit was seen running'
    assert p.returncode == 0, stderr[-3000:]
    assert (out/'metrics.json').read_text() == local('004_base')

def test_a_shared_cache_gives_the_local_metrics(local, tmp_path):
    "A Ray instance started for the run on this machine sees the driver's cache: 004_base's students read their teachers' states there."
    pytest.importorskip('ray')
    out = tmp_path/'results'/'004_base'
    out.parent.mkdir()
    env = {k: v for k, v in base_env(tmp_path/'cache').items() if k != 'RAY_ADDRESS'}
    r = kdnotes('run', '004_base', '--preset', 'smoke', '--device', 'cpu', '--executor', 'ray', '--out', out, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out/'metrics.json').read_text() == local('004_base')

def test_a_failing_unit_is_named_and_the_others_complete(tmp_path, monkeypatch):
    "reproduce on a Ray instance of this machine's two CPUs, its cache shared: 000_kd_alpha's student unit meets a state folder of other settings."
    pytest.importorskip('ray')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('KDNOTES_CACHE', str(tmp_path/'cache')); monkeypatch.setenv('OMP_NUM_THREADS', '1')
    monkeypatch.delenv('KDNOTES_DATA', raising=False); monkeypatch.delenv('RAY_ADDRESS', raising=False)
    bad = RunStates('000_kd_alpha', get_preset('000_kd_alpha', 'smoke'))('student')/'config.json'
    bad.parent.mkdir(parents=True); bad.write_text('{"run": "another"}')
    monkeypatch.setattr(cli, 'experiments', lambda: ['000_kd_alpha', '004_regression'])
    code, out, err = run_main('reproduce', '--preset', 'smoke', '--device', 'cpu', '--executor', 'ray')
    assert code == 1, err[-3000:]
    assert err.strip().splitlines()[-1] == 'kdnotes: error: 1 of 2 experiments failed: 000_kd_alpha'
    failed = next(l for l in out.splitlines() if l.strip().startswith('FAILED'))
    assert '000_kd_alpha (smoke) unit alone/student failed in cell' in failed and 'holds a run with other settings' in failed, out
    kept = Path(tempfile.gettempdir())/'kdnotes-failed-000_kd_alpha-smoke-alone-student.ipynb'
    assert f'the executed notebook: {kept}' in failed and kept.is_file()
    assert (tmp_path/'results'/'004_regression'/'smoke'/'metrics.json').is_file()
    assert not (tmp_path/'results'/'000_kd_alpha').exists()

def test_ray_missing_is_one_clear_error(tmp_path):
    fake = tmp_path/'no-ray'; fake.mkdir()
    (fake/'ray.py').write_text("raise ModuleNotFoundError(\"No module named 'ray'\", name='ray')\n")
    env = base_env(tmp_path/'cache') | {'PYTHONPATH': os.pathsep.join([str(fake), os.environ.get('PYTHONPATH', '')])}
    r = kdnotes('run', '004_base', '--executor', 'ray', '--out', tmp_path/'out', cwd=tmp_path, env=env)
    assert r.returncode == 2 and r.stderr.splitlines()[-1] == "kdnotes: error: --executor ray needs Ray (No module named 'ray'): pip install 'kdnotes[ray]'", r.stderr
    assert 'Traceback' not in r.stderr and not (tmp_path/'out').exists()

def test_address_is_for_ray_and_list_shows_units():
    r = kdnotes('run', '004_base', '--address', 'auto')
    assert r.returncode == 2 and r.stderr.splitlines()[-1] == "kdnotes: error: address='auto': is for --executor ray"
    r = kdnotes('list')
    assert 'units (paper, smoke): teachers: Train, Big → students: train_alone' in r.stdout and 'one, the whole notebook' in r.stdout
