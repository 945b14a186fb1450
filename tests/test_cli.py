"The `kdnotes` command: listing, and clear errors with exit status 2 for bad input."
import pytest
from conftest import kdnotes

def test_list_names_experiments_and_presets():
    r = kdnotes('list')
    assert r.returncode == 0, r.stderr
    assert '004_base' in r.stdout and 'paper' in r.stdout and 'smoke' in r.stdout

@pytest.mark.parametrize('args, message', [
    (['run', 'nope'], "unknown experiment 'nope': expected one of ['004_base'"),
    (['run', '004_base', '--preset', 'huge'], "preset='huge' for 004_base: expected one of ['paper', 'smoke']"),
    (['run', '004_base', '--device', 'tpu'], "device='tpu'"),
    (['reproduce', '--preset', 'huge'], "preset='huge': no experiment has it"),
])
def test_bad_input_is_a_clear_error(args, message, tmp_path):
    r = kdnotes(*args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []          # nothing written

def test_report_without_results_is_an_error(tmp_path):
    (tmp_path/'README.md').write_text('x')
    r = kdnotes('report', '--results', tmp_path/'results', '--readme', tmp_path/'README.md')
    assert r.returncode == 2 and 'no results folder' in r.stderr
    assert (tmp_path/'README.md').read_text() == 'x'
