"""The `kdnotes` command: listing, help, one rule for paths from any folder, the work folders it cleans, fetching data
(its bad input is in test_bad_input.py; random command lines in test_cli_random.py)."""
import json, os, subprocess, sys
from pathlib import Path
import pytest
import torch
import torchvision
from fastcore.xtras import working_directory
from conftest import ROOT, kdnotes
import papermill
from cli_sandbox import fake_execute, make_project, run_main, sandbox, write_results

from kdnotes.cli import experiments
from kdnotes.core import WORK_MARKER, mark_work, project_root
from kdnotes.data import IDX_FILES, load_dataset, write_idx
from kdnotes.report import GENERATED

def test_list_names_experiments_and_presets():
    r = kdnotes('list')
    assert r.returncode == 0, r.stderr
    assert '004_base' in r.stdout and 'paper' in r.stdout and 'smoke' in r.stdout

def test_reproduce_goes_on_after_a_failure_and_ends_with_a_summary(sandbox, monkeypatch):
    "One experiment's notebook fails: the others still run, a summary names each, and the exit status is 1."
    def execute(input_path, output_path, parameters, **kw):
        if Path(input_path).stem == '004_base': raise papermill.PapermillExecutionError(3, 3, 'x', 'ValueError', 'a bad value', [])
        fake_execute(input_path, output_path, parameters, **kw)
    monkeypatch.setattr(papermill, 'execute_notebook', execute)
    code, out, err = run_main('reproduce', '--preset', 'paper')
    others = [e for e in experiments() if e != '004_base']
    assert code == 1 and err.splitlines()[-1] == f'kdnotes: error: 1 of {len(others) + 1} experiments failed: 004_base', err
    summary = out[out.index(f'kdnotes reproduce --preset paper: {len(others)} of {len(others) + 1} experiments succeeded'):].splitlines()[1:]
    failed = next(l for l in summary if l.split()[:2] == ['FAILED', '004_base'])
    assert failed.split()[2:] == ['004_base', '(paper)', 'failed', 'in', 'cell', '[3]:', 'ValueError:', 'a', 'bad', 'value'], summary
    assert sorted(l.split()[1] for l in summary if l.split()[0] == 'ok') == others
    assert all((sandbox/'results'/e/'paper'/'metrics.json').is_file() for e in others)
    assert not (sandbox/'results'/'004_base'/'paper').exists()

# ---------------------------------------------------------------- help
@pytest.mark.parametrize('command, shown', [
    (['run'], ['(default: smoke)', '(default: auto)', 'distinct integers from 0 to 2**32 - 1',
               '(default: results/EXPERIMENT/PRESET in the project folder)', '004_base', 'cuda:N']),
    (['reproduce'], ['(default: smoke)', '(default: auto)', 'paper']),
    (['report'], ['(default: results/ in the project folder)', '(default: README.md in the project folder)',
                  '(default: nbs/index.ipynb in the project folder)']),
    (['book'], ['(default: book/ in the project folder)']),
    (['data', 'fetch'], ['mnist, fashion, cifar10, imagenette, vgg19', '(default: data/ in the kdnotes cache folder']),
    ([], ['relative to the working folder'])])
def test_help_shows_defaults_and_choices(command, shown):
    code, out, err = run_main(*command, '--help')
    text = ' '.join(out.split())
    assert code == 0 and all(s in text for s in shown), text

# ---------------------------------------------------------------- one rule for paths
# A path typed on the command line is relative to the working folder; a default is in the project folder.
def test_report_from_the_notebooks_folder_uses_the_project(tmp_path):
    project = make_project(tmp_path/'proj')
    r = kdnotes('report', cwd=project/'nbs')
    assert r.returncode == 0, r.stderr
    assert (project/'README.md').read_text().startswith(GENERATED) and not (project/'nbs'/'README.md').exists()
    assert (project/'results'/'004_base'/'paper'/'tables'/'summary.md').is_file()

def test_report_from_outside_with_relative_paths(tmp_path):
    project, outside = make_project(tmp_path/'proj'), tmp_path/'elsewhere'
    outside.mkdir()
    r = kdnotes('report', '--results', '../proj/results', '--index', '../proj/nbs/index.ipynb', '--readme', 'front.md', cwd=outside)
    assert r.returncode == 0, r.stderr
    assert (outside/'front.md').read_text().startswith(GENERATED) and not (project/'README.md').exists()

def test_run_and_book_from_the_notebooks_folder_write_into_the_project(tmp_path, sandbox):
    project = make_project(tmp_path/'proj')
    with working_directory(project/'nbs'):
        assert project_root() == project
        assert run_main('run', '004_base', '--device', 'cpu')[0] == 0
        assert run_main('book')[0] == 0
    assert (project/'results'/'004_base'/'smoke'/'metrics.json').is_file() and (project/'book'/'index.html').is_file()
    assert sorted(p.name for p in (project/'nbs').iterdir()) == ['index.ipynb']

def test_relative_out_outside_a_project(sandbox):
    (sandbox/'mine').mkdir()
    with working_directory(sandbox/'mine'):
        code, out, err = run_main('run', '004_base', '--device', 'cpu', '--out', 'runs/a')
    assert code == 0, err
    assert out.strip() == str(sandbox/'mine'/'runs'/'a') and (sandbox/'mine'/'runs'/'a'/'provenance.json').is_file()

def test_a_real_run_with_a_relative_out_from_outside_the_project(tmp_path, no_data_env):
    "The notebook really runs (smoke, about 15 s): a relative --out works, with the permissions of any new folder."
    outside = tmp_path/'elsewhere'; outside.mkdir()
    r = kdnotes('run', '004_base', '--preset', 'smoke', '--device', 'cpu', '--out', 'rel/out', cwd=outside, env=no_data_env | {'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stderr[-3000:]
    out = outside/'rel'/'out'
    assert (out/'metrics.json').is_file() and (out/'004_base.ipynb').is_file()
    umask = os.umask(0o022); os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask, oct(out.stat().st_mode)
    prov = json.loads((out/'provenance.json').read_text())
    assert prov['command'].endswith('--out rel/out') and prov['data'] == {'fashion': 'fashion (mini set)'}, prov
    assert sorted(p.name for p in out.parent.iterdir()) == ['out'], 'a work folder was left'

# ---------------------------------------------------------------- work folders: only kdnotes' own, only when dead
def _mark(folder:Path, pid:int, started:str):
    folder.mkdir(); (folder/'kept.txt').write_text('x')
    (folder/WORK_MARKER).write_text(json.dumps(dict(pid=pid, started=started, host=os.uname().nodename)))

def test_only_marked_leftovers_of_gone_runs_are_removed(sandbox):
    new = sandbox/'new'; new.mkdir()
    dead = subprocess.Popen([sys.executable, '-c', 'pass']); dead.wait()
    _mark(new/'.004_base-smoke.killed', dead.pid, '1')                  # a run killed outright
    _mark(new/'.004_base-smoke.reused', os.getpid(), 'not this process') # its pid now belongs to another process
    _mark(new/'.out.half', dead.pid, '1')                                # a half-copied results folder of a killed run
    (new/'.004_base-smoke.users').mkdir(); (new/'.004_base-smoke.users'/'notes.txt').write_text('mine')   # unmarked
    (new/'.out.x.old').mkdir(); (new/'.out.x.old'/'notes.txt').write_text('mine')
    live = new/'.004_base-smoke.live'; live.mkdir(); mark_work(live)    # a run still going (this process)
    code, out, err = run_main('run', '004_base', '--device', 'cpu', '--out', 'new/out')
    assert code == 0, err
    assert sorted(p.name for p in new.iterdir()) == ['.004_base-smoke.live', '.004_base-smoke.users', '.out.x.old', 'out']

def test_a_replacement_cut_short_is_put_back_then_replaced(sandbox):
    "A run killed between the two renames of a replacement left no results folder: the next run puts it back, then replaces it."
    dead = subprocess.Popen([sys.executable, '-c', 'pass']); dead.wait()
    write_results(sandbox/'new'/'.out.k2.old', '004_base', 'smoke')
    (sandbox/'new'/'.out.k2.old'/WORK_MARKER).write_text(json.dumps(dict(pid=dead.pid, started='1', host=os.uname().nodename)))
    assert run_main('run', '004_base', '--out', 'new/out')[0] == 0
    assert sorted(p.name for p in (sandbox/'new').iterdir()) == ['out']
    assert sorted(p.name for p in (sandbox/'new'/'out').iterdir()) == ['004_base.ipynb', 'metrics.json', 'provenance.json']

# ---------------------------------------------------------------- data fetch
class FakeMNIST:
    "torchvision.datasets.MNIST's stand-in: its download leaves a tiny MNIST, gzipped and uncompressed, as torchvision does."
    def __init__(self, root, download):
        raw = Path(root)/'MNIST'/'raw'; raw.mkdir(parents=True, exist_ok=True)
        g = torch.Generator().manual_seed(0)
        for f in IDX_FILES:
            a = torch.randint(0, 256, (5, 28, 28) if 'images' in f else (5,), generator=g, dtype=torch.uint8)
            write_idx(a, raw/f); write_idx(a, raw/f'{f}.gz')

def test_data_fetch_writes_a_manifest_and_the_loaders_find_it(sandbox, monkeypatch):
    monkeypatch.setattr(torchvision.datasets, 'MNIST', FakeMNIST)
    code, out, err = run_main('data', 'fetch', 'mnist')                  # into the folder every loader searches
    assert code == 0, err
    manifest = Path(os.environ['KDNOTES_CACHE'])/'data'/'MANIFEST.json'
    assert str(manifest) in out and sorted(json.loads(manifest.read_text())) == sorted(f'MNIST/raw/{f}{gz}' for f in IDX_FILES for gz in ('', '.gz'))
    assert len(load_dataset('mnist')['test']) == 5                      # no data_dir, no KDNOTES_DATA: found
    assert run_main('data', 'fetch', 'mnist', '--data-dir', 'fetched')[0] == 0   # a typed folder, relative to the working folder
    assert (sandbox/'fetched'/'MANIFEST.json').is_file()
    assert run_main('data', 'fetch', 'mnist', '--data-dir', 'fetched')[0] == 0   # again: its own files, listed, may be fetched over
