"README.md is what `kdnotes report` makes of nbs/index.ipynb and the committed results, never typed by hand; its set-up commands hold."
import difflib, re, shutil, subprocess
from conftest import ROOT
from kdnotes.cli import experiments
from kdnotes.presets import PRESETS
from kdnotes.report import TABLES, markers, readme_text

def committed_results(dest):
    "Copy the committed metrics.json, provenance.json, executed notebooks and figure files (not local runs, e.g. smoke results of the main job) under `dest`."
    files = subprocess.run(['git', 'ls-files', 'results/*/*/metrics.json', 'results/*/*/provenance.json', 'results/*/*/*.ipynb', 'results/*/*/figures/*.png'],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files: (dest/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy(ROOT/f, dest/f)
    return dest/'results'

def test_readme_is_the_front_page_with_tables_from_the_committed_results(tmp_path):
    expected, readme = readme_text(ROOT/'nbs'/'index.ipynb', committed_results(tmp_path)), (ROOT/'README.md').read_text()
    diff = ''.join(list(difflib.unified_diff(readme.splitlines(True), expected.splitlines(True), 'README.md', 'expected'))[:40])
    assert readme == expected, f'README.md is stale: edit nbs/index.ipynb, then run `kdnotes report`\n{diff}'

def test_readme_holds_every_generated_part():
    "The Findings (a numbered list with a verdict in each line and the coverage line), the per-study tables, the added rows and the run status."
    text = (ROOT/'README.md').read_text()
    parts = {name: re.search(f'{markers(name)[0]}\n(.*?){markers(name)[1]}', text, flags=re.S) for name in TABLES}
    assert all(parts.values()), f'README.md: a part has no markers: {[n for n, p in parts.items() if not p]}'
    findings = parts['findings'].group(1)
    items = re.findall(r'^\d+\. \*\*.+$', findings, flags=re.M)
    assert len(items) >= 20 and all(re.search(r'\*(Reproduced|Not reproduced|Contradicted|Not testable here)\*', i) for i in items), findings[:500]
    assert 'Coverage: of the ' in findings
    assert parts['studies'].group(1).count('### Study ') == 5
    assert parts['status'].group(1).startswith('| experiment | preset | status |')

SETUP = ['python3 -m venv .venv && . .venv/bin/activate && pip install -e . && kdnotes reproduce --preset smoke', 'bash .ci/run']

def test_the_two_setup_commands_hold():
    blocks = re.findall(r'```bash\n(.*?)\n```', (ROOT/'README.md').read_text(), flags=re.S)
    assert blocks[:2] == SETUP, f'README.md: the first two command blocks are {blocks[:2]}, expected {SETUP}'
    assert re.search(r'^console_scripts = kdnotes=kdnotes\.cli:main$', (ROOT/'settings.ini').read_text(), flags=re.M)
    assert [e for e in experiments() if 'smoke' not in PRESETS[e]] == [], 'every experiment must have a smoke preset'
    subprocess.run(['bash', '-n', ROOT/'.ci'/'run'], check=True)
