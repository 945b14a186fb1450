"""Random command lines: every one either succeeds or ends in one line `kdnotes: error: …` (never a traceback), and
none changes or removes a file kdnotes did not make.

The lines come from a seeded generator over the commands, their options and values that a careless user might
type: other experiments' results, the project, a file, '..', '/', repeated or huge seeds, devices such as 'cpu:x',
unknown data sets, options without values. They run in this process from the sandbox of `cli_sandbox` (a user's files,
among them hidden folders named like kdnotes' work folders, beside a small project), with papermill stood in for (an
experiment 'runs' in milliseconds; `mtt` fails in a cell) and no network. A few run through the installed command too."""
import random, subprocess, sys
from collections import Counter
from pathlib import Path
import papermill
import pytest
from fastcore.xtras import working_directory
from conftest import kdnotes
from cli_sandbox import assert_clear_error, fake_execute, make_decoys, run_main, sandbox, snapshot

SEED, LINES, IN_SUBPROCESS = 23, 400, 6

PATHS = ['mine', 'mine/sub', 'mine/notes.txt', 'file.txt', 'file.txt/sub', '.', '..', '/', 'proj', 'proj/nbs', 'proj/.git',
         'proj/results', 'proj/results/004_base/paper', 'proj/results/004_base', '.mine.x1y2.old', '.004_base-smoke.abcd', '.live-work',
         'new', 'new/out', 'runs/a', 'runs/b', 'results', 'nowhere/deep/x', 'proj/README.md', 'proj/nbs/index.ipynb', 'MANIFEST.json',
         '~nobody/x', 'x' * 300, 'mine/[ab]*', 'line\nbreak', 'books/b', 'books', '.004_base-smoke.abcd/inside',
         'proj/results/004_base/paper/figures', 'fetched']
GOOD = {'experiment': ['004_base', '004_regression', '002_synthetic', 'mtt'], 'preset': ['smoke', 'paper'], 'device': ['cpu', 'auto'],
        'seed': ['0', '1', '2', '7', '4294967295'], 'name': ['mnist', 'fashion', 'cifar10', 'imagenette', 'vgg19'], 'path': PATHS}
BAD = {'experiment': ['nope', '', '../004_base', '004_base/', '.'], 'preset': ['huge', '', '../paper', 'cpu'],
       'device': ['cpu:x', 'cpu:0', 'cuda', 'cuda:0', 'cuda:x', 'tpu', 'mps', 'CPU', ''], 'name': ['svhn', ''], 'path': ['', ' ', '\0'],
       'seed': ['-1', '4294967296', '99999999999999999999', 'x', '1.5', '']}
JUNK = ['--bogus', '-x', '--', '--out', '--seeds', '--preset', 'extra']
OPTIONS = {'run': ['--preset', '--device', '--out', '--data-dir', '--seeds'], 'reproduce': ['--preset', '--device', '--data-dir', '--seeds'],
           'report': ['--results', '--readme', '--index'], 'book': ['--out'], 'data fetch': ['--data-dir'], 'list': []}
OFTEN = {'--out': 0.9, '--data-dir': 0.15}                                 # how often a line has the option
KIND = {'--preset': 'preset', '--device': 'device', '--seeds': 'seed'}      # every other option takes a path
FOLDERS = ['.', 'mine', 'proj', 'proj/nbs']                                 # where the line is typed

def command_line(rng:random.Random) -> tuple[list[str], str]:
    "A random command line, most often sound but for where it writes, now and then with one mistake; and the folder it is typed in."
    cmd = rng.choices(list(OPTIONS), weights=[10, 2, 3, 1, 2, 1])[0]
    words = [('experiment', None)] if cmd == 'run' else [('name', None)]*rng.randint(1, 2) if cmd == 'data fetch' else []
    for option in [o for o in OPTIONS[cmd] if rng.random() < OFTEN.get(o, 0.4)]:
        kind = KIND.get(option, 'path')
        words += [(None, option)] + [(kind, None)]*(rng.randint(1, 3) if kind == 'seed' else 1)
    values = [w if kind is None else rng.choice(GOOD[kind]) for kind, w in words]
    mistake = rng.choice(['none', 'none', 'bad value', 'repeated seed', 'missing value', 'junk'])
    if mistake == 'bad value' and (at := [i for i, (kind, _) in enumerate(words) if kind]):
        i = rng.choice(at); values[i] = rng.choice(BAD[words[i][0]])
    elif mistake == 'repeated seed' and (at := [i for i, (kind, _) in enumerate(words) if kind == 'seed']): values.insert(at[0], values[at[0]])
    elif mistake == 'missing value' and (at := [i for i, (kind, _) in enumerate(words) if kind and i and words[i - 1][0] is None]):
        del values[rng.choice(at)]
    elif mistake == 'junk': values.insert(rng.randint(0, len(values)), rng.choice(JUNK))
    return cmd.split() + values, rng.choice(FOLDERS)

def fake_or_failing(input_path, output_path, parameters, **kw):
    "papermill's stand-in; the `mtt` notebook fails in a cell, as a real run can."
    if Path(input_path).stem == 'mtt': raise papermill.PapermillExecutionError(3, 3, 'x', 'RuntimeError', 'loss is NaN', [])
    fake_execute(input_path, output_path, parameters)

def test_random_command_lines(sandbox, monkeypatch):
    monkeypatch.setattr(papermill, 'execute_notebook', fake_or_failing)
    files = make_decoys(sandbox) + sorted(p for p in (sandbox/'proj').rglob('*') if p.is_file() and 'results' not in p.parts)
    before, rng, outcomes = snapshot(files), random.Random(SEED), Counter()
    for i in range(LINES):
        args, folder = command_line(rng)
        with working_directory(sandbox/folder): code, out, err = run_main(*args)
        if code: assert_clear_error(code, err, (folder, args))
        assert snapshot(files) == before, f'{args} in {folder} changed or removed a file kdnotes did not make'
        outcomes[(args[:1] or ['-'])[0], 'ok' if code == 0 else err.strip().splitlines()[-1].split(':')[2].strip()[:40]] += 1
    print('\n'.join(f'{n:4} {c:10} {what}' for (c, what), n in sorted(outcomes.items(), key=lambda kv: -kv[1])))
    assert sum(n for (c, what), n in outcomes.items() if what == 'ok') >= 20, outcomes      # the lines also reach real work
    assert not list(sandbox.rglob('.kdnotes-work'))[1:], 'a work folder of a finished run was left'   # only .live-work's

@pytest.mark.parametrize('i', range(IN_SUBPROCESS))
def test_random_command_lines_through_the_installed_command(i, tmp_path, no_data_env):
    "The same kind of line through the `kdnotes` command itself (no stand-in: only lines that fail before any notebook)."
    rng = random.Random(SEED + 1 + i)
    while True:
        args, folder = command_line(rng)
        if args[0] in ('list', 'report') or any(v in args for v in BAD['device'][:4] + ['x', '-1']): break   # no notebook starts
    work = tmp_path/'work'; work.mkdir()
    files = make_decoys(work); before = snapshot(files)
    (work/folder).mkdir(parents=True, exist_ok=True)
    r = kdnotes(*args, cwd=work/folder, env=no_data_env)
    if r.returncode: assert_clear_error(r.returncode, r.stderr, (folder, args))
    assert snapshot(files) == before, args
