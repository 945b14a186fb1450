"README's results table is what `kdnotes report` makes of the committed results, never typed by hand."
import re, shutil, subprocess
from conftest import ROOT
from kdnotes.report import START, END, results_table

def committed_results(dest):
    "Copy the committed metrics.json files (not local runs, e.g. smoke results of the main job) under `dest`."
    files = subprocess.run(['git', 'ls-files', 'results/*/*/metrics.json'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files: (dest/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy(ROOT/f, dest/f)
    return dest/'results'

def test_readme_results_table_matches_committed_results(tmp_path):
    table = re.search(f'{START}\n(.*?){END}', (ROOT/'README.md').read_text(), flags=re.S).group(1)
    assert table == results_table(committed_results(tmp_path)), 'README.md is stale: run `kdnotes report`'
