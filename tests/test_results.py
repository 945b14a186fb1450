"""The committed results are current and clean: each executed notebook in results/ is its source notebook run (its code
cells equal the source's, the parameters papermill injects aside), and no output shows a traceback, a warning or a
path of the machine that ran it.

These tests fail while results/ holds runs made from older sources: rerun the listed presets, e.g.
`kdnotes run 004_base --preset paper --device cpu`, then `kdnotes report` (see the message for the full list)."""
import json, re
from conftest import ROOT

SKIP_TAGS = {'injected-parameters'}
MACHINE_PATH = re.compile(r'(/tmp/|/var/folders/|/home/|/root/|/Users/|/work/|site-packages|\.venv|\.cache/kdnotes)')
BAD_WORDS = ('Traceback', 'Warning')

def executed_notebooks():
    return sorted(p for p in ROOT.glob('results/*/*/*.ipynb') if p.stem == p.parent.parent.name)

def code_cells(path):
    "The sources of the code cells of notebook `path`, papermill's injected parameters left out."
    nb = json.loads(path.read_text())
    return [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code' and not SKIP_TAGS & set(c.get('metadata', {}).get('tags', []))]

def output_texts(path):
    "(cell index, text) of every output of notebook `path`: streams, errors, and the text forms of displays."
    nb = json.loads(path.read_text())
    for i, c in enumerate(nb['cells']):
        for o in c.get('outputs', []):
            if o['output_type'] == 'stream': yield i, ''.join(o['text'])
            elif o['output_type'] == 'error': yield i, '\n'.join([o['ename'], o['evalue'], *o.get('traceback', [])])
            else:
                for kind in ('text/plain', 'text/markdown', 'text/html'):
                    if kind in o.get('data', {}): yield i, ''.join(o['data'][kind])

def rerun(path):
    return f"kdnotes run {path.stem} --preset {path.parent.name} --device cpu"

def test_there_are_executed_notebooks():
    assert executed_notebooks(), 'no executed notebook in results/'

def test_executed_notebooks_are_their_current_source():
    stale = [p for p in executed_notebooks() if code_cells(p) != code_cells(ROOT/'nbs'/'experiments'/f'{p.stem}.ipynb')]
    assert not stale, ('executed notebooks older than their source (rerun each, then `kdnotes report`):\n'
                       + '\n'.join(f'  {p.relative_to(ROOT)}: {rerun(p)}' for p in stale))

def test_executed_outputs_show_no_traceback_warning_or_machine_path():
    found = [f'{p.relative_to(ROOT)} cell {i}: {m}' for p in executed_notebooks() for i, text in output_texts(p)
             for m in [*(w for w in BAD_WORDS if w in text), *MACHINE_PATH.findall(text)]]
    assert not found, 'executed outputs to clean (fix the cause, then rerun the run):\n' + '\n'.join(sorted(set(found)))
