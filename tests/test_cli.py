"The `kdnotes` command: listing (its bad input is in test_bad_input.py)."
from conftest import kdnotes

def test_list_names_experiments_and_presets():
    r = kdnotes('list')
    assert r.returncode == 0, r.stderr
    assert '004_base' in r.stdout and 'paper' in r.stdout and 'smoke' in r.stdout
