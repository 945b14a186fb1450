"""A sandbox for running the `kdnotes` command in-process: a folder of a user's files (decoys) beside a small kdnotes
project, papermill replaced by a stand-in that writes a results folder at once, and no network."""
import contextlib, hashlib, io, json, socket
from pathlib import Path

import papermill
import pytest

from kdnotes.cli import main
from kdnotes.core import WORK_MARKER, atomic_dir, mark_work, save_json

INDEX = {'cells': [{'cell_type': 'markdown', 'id': 'a1', 'metadata': {}, 'source': '# kdnotes\n\nA front page.'}],
         'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}

def write_results(folder:Path, experiment:str, preset:str):
    "A results folder of `experiment`/`preset` as a run writes it: metrics.json (one row a study claim speaks to) and provenance.json."
    row = {'student': 'FashionMNIST-Train', 'teacher': '—', 'phi': '—'}
    history = {'test_acc': [[0.7, 0.8], [0.7, 0.9]], 'test_ce': [[0.9, 0.6], [0.9, 0.5]]}
    metrics = dict(experiment=experiment, preset=preset, settings={}, rows={'train_alone': row},
                   histories={'train_alone': {'independent': history}}, figures={})
    for f, d in [('metrics.json', metrics), ('provenance.json', dict(experiment=experiment, preset=preset))]: save_json(d, folder/f)

def make_project(root:Path) -> Path:
    "A small kdnotes checkout at `root`: settings.ini, a git folder, the front page notebook, one results folder."
    (root/'nbs').mkdir(parents=True); (root/'.git').mkdir()
    (root/'settings.ini').write_text('[DEFAULT]\nrepo = kdnotes\nlib_name = %(repo)s\n')
    (root/'.git'/'HEAD').write_text('ref: refs/heads/main\n')
    (root/'nbs'/'index.ipynb').write_text(json.dumps(INDEX))
    write_results(root/'results'/'004_base'/'paper', '004_base', 'paper')
    return root

def make_decoys(root:Path) -> list[Path]:
    "A user's files around the places kdnotes writes: folders, a file, hidden folders named like kdnotes' work folders."
    files = {'mine/notes.txt': 'mine', 'mine/sub/deep.txt': 'deep', 'file.txt': 'a file', 'MANIFEST.json': '{"a": 1',
             '.mine.x1y2.old/kept.txt': 'looks like a replaced folder', '.004_base-smoke.abcd/kept.txt': 'looks like a work folder',
             '.smoke.q1/kept.txt': 'looks like a half-copied results folder', 'proj/.git/config': '[core]',
             'proj/results/004_base/.paper.zz.old/kept.txt': 'looks like a replaced results folder',
             'proj/results/004_domains/paper/notes.txt': "a user's folder where results would go",
             'proj/notes.md': 'not a README kdnotes wrote', 'proj/README.md': 'a README of my own'}
    for rel, text in files.items(): (root/rel).parent.mkdir(parents=True, exist_ok=True); (root/rel).write_text(text)
    live = root/'.live-work'; live.mkdir(); mark_work(live); (live/'kept.txt').write_text('a run still going')   # this process: alive
    return sorted([root/rel for rel in files] + [live/'kept.txt', live/WORK_MARKER])

def snapshot(files:list[Path]) -> dict:
    "The sha256 of each of `files` (None where it is gone)."
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None for p in files}

def fake_execute(input_path, output_path, parameters, **kw):
    "papermill.execute_notebook's stand-in: the results folder a run of the notebook writes, at once."
    experiment = Path(input_path).stem
    with atomic_dir(Path(parameters['out_dir'])) as tmp: write_results(tmp, experiment, parameters['preset'])
    Path(output_path).write_text(Path(input_path).read_text())

def _unreachable(*a, **k): raise OSError(101, 'Network is unreachable')

@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    "The working folder of an in-process `kdnotes`: decoys beside a project (in `proj/`), a fresh cache, no data, no network."
    work = tmp_path/'work'; work.mkdir()
    make_project(work/'proj')
    monkeypatch.chdir(work)
    monkeypatch.setenv('KDNOTES_CACHE', str(tmp_path/'cache')); monkeypatch.delenv('KDNOTES_DATA', raising=False)
    monkeypatch.setattr(papermill, 'execute_notebook', fake_execute)
    monkeypatch.setattr(socket, 'create_connection', _unreachable)
    return work

def run_main(*argv) -> tuple[int, str, str]:
    "Exit status, standard output and standard error of `kdnotes *argv` run in this process."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: main([str(a) for a in argv]); code = 0
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()

def assert_clear_error(code:int, err:str, argv):
    "A failure ends in exactly one line `kdnotes: error: …`, never a traceback."
    assert code in (1, 2), (argv, code, err)
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith('kdnotes: error: '), (argv, err[-2000:])
    assert 'Traceback' not in err, (argv, err[-2000:])
    assert sum(l.startswith('kdnotes: error') for l in lines) == 1, (argv, err[-2000:])
