"Bad input, table-driven: every case gets a clear error naming the problem, a non-zero exit, and no partial output."
import os, shutil
from pathlib import Path
import pytest
import torch
from conftest import kdnotes as run_kdnotes

from kdnotes.core import get_device
from kdnotes.data import ImageSet, big_small_split, epoch_batches, find_data_file, load_dataset
from kdnotes.domain import add_noise, fit_vae, pair_by_class, TwoDecoderVAE
from kdnotes.losses import kd_loss
from kdnotes.models import MLP, CifarResNet, Stacked
from kdnotes.mtt import init_synthetic
from kdnotes.presets import get_preset
from kdnotes.report import render, summarise, update_readme
from kdnotes.train import fit, integral_criterion, protocol_runs
from kdnotes.vid import make_lam

# ---------------------------------------------------------------- the command line
# (arguments, what the message must contain). Every case must exit non-zero and write nothing under the run folder.
CLI_CASES = {
    'no command': ([], 'usage'),
    'unknown command': (['train'], 'invalid choice'),
    'unknown experiment': (['run', '004_nothing'], "unknown experiment '004_nothing': expected one of ["),
    'unknown preset': (['run', '004_base', '--preset', 'huge'], "preset='huge' for 004_base: expected one of ['paper', 'smoke']"),
    'unknown device': (['run', '004_base', '--device', 'tpu'], "device='tpu'"),
    'no GPU here': (['run', '004_base', '--device', 'cuda'], 'no CUDA device'),
    'seeds not integers': (['run', '004_base', '--seeds', 'one'], "invalid int value: 'one'"),
    'reproduce an unknown preset': (['reproduce', '--preset', 'huge'], "preset='huge': no experiment has it"),
    'report on an empty results folder': (['report', '--results', 'empty'], 'no results folder with a metrics.json'),
    'report on a missing results folder': (['report', '--results', 'missing'], 'no results folder with a metrics.json'),
    'book over a folder it did not write': (['book', '--out', 'empty_not_book'], 'is not a kdnotes book'),
}
RUN_FAILS = {  # the run starts and fails inside the notebook: exit 1, the cell and the error named
    'missing data for a full-size run': (['run', '004_base', '--preset', 'paper', '--device', 'cpu', '--data-dir', 'nodata'],
                                         'failed in cell'),
}

@pytest.mark.parametrize('case', [*CLI_CASES, *RUN_FAILS])
def test_cli_bad_input(case, tmp_path, no_data_env):
    args, message = CLI_CASES.get(case) or RUN_FAILS[case]
    for d in ('empty', 'nodata', 'empty_not_book'): (tmp_path/d).mkdir()
    (tmp_path/'empty_not_book'/'notes.txt').write_text('mine')
    readme = tmp_path/'README.md'; readme.write_text('<!-- results:start -->\nold\n<!-- results:end -->\n')
    extra = ['--out', tmp_path/'out'] if args[:1] == ['run'] else ['--readme', readme] if args[:1] == ['report'] else []
    r = run_kdnotes(*args, *extra, cwd=tmp_path, env=no_data_env)
    assert r.returncode == (1 if case in RUN_FAILS else 2), (r.returncode, r.stderr[-2000:])
    assert message in r.stderr, r.stderr[-2000:]
    assert 'Traceback' not in r.stderr, 'a user error should be a message, not a traceback'
    assert not (tmp_path/'out').exists() and not (tmp_path/'results').exists()
    assert 'old' in readme.read_text() and (tmp_path/'empty_not_book'/'notes.txt').read_text() == 'mine'

def test_failed_run_names_the_data_searched(tmp_path, no_data_env):
    r = run_kdnotes(*RUN_FAILS['missing data for a full-size run'][0], '--out', tmp_path/'out', cwd=tmp_path, env=no_data_env)
    assert 'not found; searched' in r.stderr and 'the executed notebook:' in r.stderr, r.stderr[-2000:]

# ---------------------------------------------------------------- the library
def _images(n=8, classes=2): return ImageSet(torch.zeros(n, 1, 4, 4, dtype=torch.uint8), torch.arange(n) % classes, list(range(classes)))
_logits, _y = torch.zeros(4, 10), torch.zeros(4, dtype=torch.long)

LIB_CASES = {
    'unknown data set': (lambda: load_dataset('svhn'), "name='svhn'"),
    'unknown data source': (lambda: load_dataset('mnist', source='huge'), "source='huge'"),
    'images not uint8': (lambda: ImageSet(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), [0]), 'expected uint8'),
    'labels and images differ in number': (lambda: ImageSet(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3), [0]), 'but y has 3 labels'),
    'Small larger than the set': (lambda: big_small_split(100, 100, 0), 'n_small=100'),
    'Small empty': (lambda: big_small_split(100, 0, 0), 'n_small=0'),
    'unknown device': (lambda: get_device('gpu0'), "device='gpu0'"),
    'temperature zero': (lambda: kd_loss(_logits, _logits, _y, T=0), 'T=0'),
    'temperature negative': (lambda: kd_loss(_logits, _logits, _y, T=-1.), 'T=-1.0'),
    'alpha above 1': (lambda: kd_loss(_logits, _logits, _y, alpha=1.5), 'alpha=1.5'),
    'alpha below 0': (lambda: kd_loss(_logits, _logits, _y, alpha=-0.1), 'alpha=-0.1'),
    'teacher and student class counts differ': (lambda: kd_loss(_logits, torch.zeros(4, 100), _y), 'differ in shape'),
    'literal form with a temperature': (lambda: kd_loss(_logits, _logits, _y, T=4, literal=True), 'literal form has no temperature'),
    'MLP without an output width': (lambda: MLP([784]), 'sizes=[784]'),
    'unknown ResNet': (lambda: CifarResNet('resnet7'), "arch='resnet7'"),
    'empty ensemble': (lambda: Stacked([]), 'at least one model'),
    'negative epochs': (lambda: fit(Stacked([MLP([16, 2])]), _images(), -1, 4, [0]), 'epochs=-1'),
    'batch size zero': (lambda: fit(Stacked([MLP([16, 2])]), _images(), 1, 0, [0]), 'bs=0'),
    'seeds and runs differ in number': (lambda: fit(Stacked([MLP([16, 2])]), _images(), 1, 4, [0, 1]), '2 seeds for 1 runs'),
    'teachers and seeds differ in number': (lambda: protocol_runs(lambda: MLP([16, 2]), _images(), _images(), [0, 1], 1, 4, 1e-3,
                                                                  loss_fn=None, teachers=Stacked([MLP([16, 2])])), '1 teachers for 2 seeds'),
    'integral over one point': (lambda: integral_criterion([[1.]]), 'expected (runs, epochs >= 2)'),
    'unknown preset': (lambda: get_preset('004_base', 'fast'), "preset='fast'"),
    'unknown experiment': (lambda: get_preset('004', 'paper'), "experiment='004'"),
    'no seeds': (lambda: get_preset('004_base', 'paper', seeds=[]), 'seeds=[]'),
    'history without test curves': (lambda: summarise({'train_loss': [[1.]]}), 'expected at least one of'),
    'IPC larger than a class': (lambda: init_synthetic(torch.zeros(8, 1, 4, 4), torch.arange(8) % 2, 2, 5), 'ipc=5'),
    'negative noise': (lambda: add_noise(torch.zeros(2, 1, 4, 4), std=-0.1), 'std=-0.1'),
    'no digit of a class to pair with': (lambda: pair_by_class(torch.tensor([0, 3]), torch.tensor([0, 1, 2])), 'no element of class 3'),
    'one pair per image missing': (lambda: fit_vae(TwoDecoderVAE(4, 8, 16), _images(), _images(), torch.arange(3), 1), 'pairs has 3 entries'),
    'unknown λ scheme': (lambda: make_lam('diagonal', 3, 2), "lam='diagonal'"),
    'λ columns not summing to 1': (lambda: make_lam(torch.ones(3, 2), 3, 2), 'columns'),
}

@pytest.mark.parametrize('case', LIB_CASES)
def test_library_bad_input(case):
    fn, message = LIB_CASES[case]
    with pytest.raises(ValueError) as e: fn()
    assert message in str(e.value), str(e.value)

def test_enough_cases(): assert len(CLI_CASES) + len(RUN_FAILS) + len(LIB_CASES) + len(DATA_CASES) >= 30

# ---------------------------------------------------------------- damaged data files
def _data_copy(tmp_path, damage, manifest):
    "A copy of the real FashionMNIST files with `damage` applied to the test images, with or without the MANIFEST."
    src = Path(find_data_file('FashionMNIST/raw/t10k-images-idx3-ubyte.gz')).parents[2]
    dst = tmp_path/'data'; (dst/'FashionMNIST'/'raw').mkdir(parents=True)
    if manifest: shutil.copy(src/'MANIFEST.json', dst/'MANIFEST.json')
    for f in (src/'FashionMNIST'/'raw').iterdir(): shutil.copy(f, dst/'FashionMNIST'/'raw'/f.name)
    damage(dst/'FashionMNIST'/'raw'/'t10k-images-idx3-ubyte.gz')
    return dst

def _flip_byte(p): b = bytearray(p.read_bytes()); b[len(b)//2] ^= 0xFF; p.write_bytes(bytes(b))
def _truncate(p): p.write_bytes(p.read_bytes()[:1000])
def _remove(p): p.unlink()

DATA_CASES = {'altered file (sha256 mismatch)': (_flip_byte, True, 'sha256 does not match'),
              'truncated gz, with a MANIFEST': (_truncate, True, 'sha256 does not match'),
              'truncated gz, no MANIFEST to check': (_truncate, False, 'cannot be decompressed'),
              'missing file': (_remove, True, 'not found; searched')}

@pytest.mark.parametrize('case', DATA_CASES)
def test_damaged_data(case, tmp_path, monkeypatch):
    if not os.environ.get('KDNOTES_DATA'): pytest.fail('set KDNOTES_DATA to the real data folder (../shared/data): these cases damage a copy of it')
    damage, manifest, message = DATA_CASES[case]
    data = _data_copy(tmp_path, damage, manifest)
    monkeypatch.setenv('KDNOTES_CACHE', str(tmp_path/'cache'))
    monkeypatch.setenv('KDNOTES_DATA', str(data))
    with pytest.raises((ValueError, FileNotFoundError)) as e: load_dataset('fashion', data_dir=data)
    assert message in str(e.value), str(e.value)
    assert not list((tmp_path/'cache').rglob('t10k-images*')), 'a damaged file left a decoded copy in the cache'
