"Bad input, table-driven: every case gets a clear error naming the problem, a non-zero exit, and no partial output."
import errno, gzip, hashlib, io, json, os, pickle, resource, shutil, subprocess, sys, tarfile, tempfile
from contextlib import nullcontext
from pathlib import Path
import pytest
import torch
import torchvision
from fastcore.xtras import working_directory
from conftest import kdnotes as run_kdnotes
from cli_sandbox import assert_clear_error, make_decoys, make_project, run_main, sandbox, snapshot, write_results

from kdnotes.cli import user_path
from kdnotes.core import atomic_dir, check_replaceable, check_seeds, get_device, load_json, results_name
from kdnotes.data import (CIFAR10_BATCHES, IDX_FILES, ImageSet, big_small_split, epoch_batches, fetch_data, find_data_file, load_dataset,
                          read_cifar_batch, read_idx, write_cifar_batch, write_idx)
from kdnotes.domain import add_noise, fit_vae, pair_by_class, TwoDecoderVAE
from kdnotes.losses import kd_loss
from kdnotes.models import MLP, CifarResNet, Stacked
from kdnotes.mtt import init_synthetic
from kdnotes.presets import get_preset
from kdnotes.report import read_metrics, render, summarise
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
    'book over a folder it did not write': (['book', '--out', 'empty_not_book'], 'holds files kdnotes did not write, not a kdnotes book'),
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
    (tmp_path/'nodata').mkdir()
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
    # seeds and devices
    'a seed repeated': (lambda: check_seeds([1, 2, 1]), '1 is given twice'),
    'a negative seed': (lambda: check_seeds([-1]), '-1 is not an integer from 0'),
    'a seed past 2**32 - 1': (lambda: check_seeds([2**32]), '4294967296 is not an integer from 0'),
    'a seed that is not an integer': (lambda: check_seeds([1.5]), '1.5 is not an integer'),
    'a seed that is a truth value': (lambda: check_seeds([True]), 'True is not an integer'),
    'device with a bad index': (lambda: get_device('cpu:x'), "device='cpu:x'"),
    'CUDA device with a bad index': (lambda: get_device('cuda:x'), "device='cuda:x'"),
    'device with a space': (lambda: get_device(' cpu'), "device=' cpu'"),
    'empty path': (lambda: user_path('', 'out'), "out='': expected a path"),
    # folders kdnotes would replace
    "results over a user's folder": (lambda: check_replaceable(_user_folder(), results_name('e', 'smoke')), 'holds files kdnotes did not write'),
    'results over a file': (lambda: check_replaceable(_user_folder()/'notes.txt', results_name('e', 'smoke')), 'is a file'),
    "results over another experiment's": (lambda: check_replaceable(_results_folder('e', 'paper'), results_name('f', 'paper')),
                                          'holds the results of e (paper), not the results of f (paper)'),
    "atomic_dir over a user's folder": (lambda: _write_atomic(_user_folder()), 'holds files kdnotes did not write'),
    # damaged files
    'JSON cut short': (lambda: load_json(_file('m.json', b'{"a": [1, 2')), 'not valid JSON'),
    'metrics.json cut short': (lambda: read_metrics(_file('metrics.json', b'{"experiment"').parent), 'metrics.json: not valid JSON'),
    'metrics.json without its histories': (lambda: read_metrics(_file('metrics.json', b'{"experiment": "e", "preset": "p", "rows": {}}').parent),
                                           'no valid histories'),
    'manifest cut short': (lambda: find_data_file('a', _beside_manifest(b'{"a": {"by')), 'MANIFEST.json: not valid JSON'),
    'manifest without sha256': (lambda: find_data_file('a', _beside_manifest(b'{"a": {"bytes": 1}}')), "entry of 'a' lacks"),
    'manifest not an object': (lambda: find_data_file('a', _beside_manifest(b'[]')), 'expected an object'),
    'a file the manifest does not list': (lambda: find_data_file('b', _file('b', b'x', manifest={})), 'not listed in'),
    'IDX header that lies about the length': (lambda: read_idx(_file('x-idx1-ubyte', b'\0\0\x08\x01\0\0\0\x09' + bytes(3))), 'header matches'),
    'IDX of floats': (lambda: read_idx(_file('x-idx1-ubyte', b'\0\0\x0d\x01\0\0\0\x01' + bytes(4))), 'not an IDX file of unsigned bytes'),
    'a .gz that is not gzip': (lambda: read_idx(_file('x-idx1-ubyte.gz', b'not gzip')), 'cannot be decompressed'),
    'a CIFAR batch that would run code': (lambda: read_cifar_batch(_file('data_batch_1', pickle.dumps(os.system, protocol=2))), 'is not allowed'),
    'a CIFAR batch of the wrong width': (lambda: read_cifar_batch(_file('data_batch_1', pickle.dumps({'data': torch.zeros(1, 8, dtype=torch.uint8).numpy(), 'labels': [0]}, protocol=2))),
                                         'expected N×3072'),
    'an unknown data set to fetch': (lambda: fetch_data(['svhn'], tempfile.mkdtemp()), "names=['svhn']"),
    'nothing to fetch': (lambda: fetch_data([], tempfile.mkdtemp()), 'names=[]'),
}

def _user_folder() -> Path:
    "A user's folder with one file in it."
    d = Path(tempfile.mkdtemp()); (d/'notes.txt').write_text('mine')
    return d

def _results_folder(experiment, preset) -> Path:
    d = Path(tempfile.mkdtemp()); write_results(d, experiment, preset)
    return d

def _write_atomic(path):
    with atomic_dir(path) as tmp: write_results(tmp, 'e', 'smoke')

def _beside_manifest(manifest:bytes) -> Path:
    "A data folder holding a file `a` and a MANIFEST.json of the bytes `manifest`."
    d = _file('a', b'x').parent; (d/'MANIFEST.json').write_bytes(manifest)
    return d

def _file(name, data:bytes, manifest=None) -> Path:
    "A file `name` holding `data` in a new folder (with a MANIFEST.json of `manifest` entries when given)."
    d = Path(tempfile.mkdtemp()); (d/name).write_bytes(data)
    if manifest is not None: (d/'MANIFEST.json').write_text(json.dumps(manifest))
    return d/name if manifest is None else d

@pytest.mark.parametrize('case', LIB_CASES)
def test_library_bad_input(case):
    fn, message = LIB_CASES[case]
    with pytest.raises(ValueError) as e: fn()
    assert message in str(e.value), str(e.value)


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

# ---------------------------------------------------------------- damaged data in each of its forms
# Small sets written here in torchvision's forms (IDX files, plain or gzipped; CIFAR-10 batches; the JPEG archive), each
# damaged one way, with or without a MANIFEST.json vouching for the folder.
def _forms(root:Path, manifest:bool) -> Path:
    "A data folder with a tiny MNIST (IDX, uncompressed), CIFAR-10 (batches) and CIFAR-10 JPEG archive; its MANIFEST.json if asked."
    g = torch.Generator().manual_seed(0)
    (root/'MNIST'/'raw').mkdir(parents=True); (root/'cifar-10-batches-py').mkdir()
    for f in IDX_FILES: write_idx(torch.randint(0, 256, (4, 28, 28) if 'images' in f else (4,), generator=g, dtype=torch.uint8), root/'MNIST'/'raw'/f)
    for b in CIFAR10_BATCHES: write_cifar_batch(torch.randint(0, 256, (3, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(3), root/'cifar-10-batches-py'/b)
    with tarfile.open(root/'cifar10-jpeg.tar.xz', 'w:xz') as tar:
        for split in ('train', 'test'):
            data = torchvision.io.encode_jpeg(torch.zeros(3, 32, 32, dtype=torch.uint8)).numpy().tobytes()
            info = tarfile.TarInfo(f'c/{split}/cat/0.jpg'); info.size = len(data); tar.addfile(info, io.BytesIO(data))
    if manifest:
        files = [p for p in root.rglob('*') if p.is_file()]
        (root/'MANIFEST.json').write_text(json.dumps({p.relative_to(root).as_posix(): dict(bytes=p.stat().st_size, sha256=hashlib.sha256(p.read_bytes()).hexdigest())
                                                      for p in files}))
    return root

def _cut(p): p.write_bytes(p.read_bytes()[:len(p.read_bytes())//2])
def _alter(p): b = bytearray(p.read_bytes()); b[-1] ^= 0xFF; p.write_bytes(bytes(b))
def _add_stray(root): (root/'MNIST'/'raw'/'t10k-images-idx3-ubyte.gz').write_bytes(b'stray')   # the .gz form is second: never read...

FORM_CASES = {  # (data set, damage to (root), manifest?, message)
    'uncompressed IDX altered, with a manifest': ('mnist', lambda r: _alter(r/'MNIST'/'raw'/IDX_FILES[0]), True, 'sha256 does not match'),
    'uncompressed IDX cut short, with a manifest': ('mnist', lambda r: _cut(r/'MNIST'/'raw'/IDX_FILES[2]), True, 'sha256 does not match'),
    'uncompressed IDX cut short, no manifest': ('mnist', lambda r: _cut(r/'MNIST'/'raw'/IDX_FILES[2]), False, 'header matches its length'),
    'IDX labels fewer than images': ('mnist', lambda r: write_idx(torch.zeros(3, dtype=torch.uint8), r/'MNIST'/'raw'/IDX_FILES[1]), False,
                                     'expected N images and N labels'),
    'an IDX file replaced by another, with a manifest': ('mnist', lambda r: write_idx(torch.zeros(4, 28, 28), r/'MNIST'/'raw'/IDX_FILES[0]), True,
                                                         'sha256 does not match'),
    'CIFAR-10 batch altered, with a manifest': ('cifar10', lambda r: _alter(r/'cifar-10-batches-py'/'data_batch_3'), True, 'sha256 does not match'),
    'CIFAR-10 batch cut short, no manifest': ('cifar10', lambda r: _cut(r/'cifar-10-batches-py'/'test_batch'), False, 'not a CIFAR-10 batch'),
    'CIFAR-10 JPEG archive altered, with a manifest': ('cifar10-jpeg', lambda r: _alter(r/'cifar10-jpeg.tar.xz'), True, 'sha256 does not match'),
    'CIFAR-10 JPEG archive cut short, no manifest': ('cifar10-jpeg', lambda r: _cut(r/'cifar10-jpeg.tar.xz'), False,
                                                     'not a readable CIFAR-10 JPEG archive'),
    'manifest cut short': ('cifar10', lambda r: _cut(r/'MANIFEST.json'), True, 'MANIFEST.json: not valid JSON'),
    'manifest entry without its sha256': ('mnist', lambda r: (r/'MANIFEST.json').write_text(json.dumps(
        {k: {'bytes': v['bytes']} for k, v in json.loads((r/'MANIFEST.json').read_text()).items()})), True, 'lacks a valid "bytes" or "sha256"'),
    'a stray file beside a manifest': ('mnist', lambda r: (r/'MNIST'/'raw'/IDX_FILES[3]).unlink() or
                                       (r/'MNIST'/'raw'/(IDX_FILES[3] + '.gz')).write_bytes(gzip.compress(bytes(8))), True, 'not listed in'),
}

@pytest.mark.parametrize('case', FORM_CASES)
def test_damaged_data_forms(case, tmp_path, monkeypatch):
    name, damage, manifest, message = FORM_CASES[case]
    monkeypatch.setenv('KDNOTES_CACHE', str(tmp_path/'cache')); monkeypatch.delenv('KDNOTES_DATA', raising=False)
    root = _forms(tmp_path/'data', manifest)
    load_dataset(name, data_dir=root)                                  # whole, it loads
    damage(root)
    with pytest.raises(ValueError) as e: load_dataset(name, data_dir=root)
    assert message in str(e.value) and str(root) in str(e.value), str(e.value)

# ---------------------------------------------------------------- the command line, in this process
# Each case runs `kdnotes` from the sandbox (a user's files beside a small project in proj/; papermill stood in for,
# no network) and must end in one line `kdnotes: error: …` containing the message, exit 2, start no notebook and
# leave every file there as it was. (arguments, message[, working folder]).
SANDBOX_CASES = {
    "out: a user's folder": (['run', '004_base', '--out', 'mine'], "mine': holds files kdnotes did not write, not the results of 004_base (smoke)"),
    "out: a user's subfolder": (['run', '004_base', '--out', 'sub'], "mine/sub': holds files kdnotes did not write", 'mine'),
    'out: the working folder': (['run', '004_base', '--out', '.'], 'holds files kdnotes did not write'),
    'out: the folder above': (['run', '004_base', '--out', '..'], "work': holds files kdnotes did not write", 'mine'),
    'out: the project': (['run', '004_base', '--out', 'proj'], "proj': holds files kdnotes did not write"),
    "out: the project's git folder": (['run', '004_base', '--out', 'proj/.git'], "proj/.git': holds files kdnotes did not write"),
    'out: the results root': (['run', '004_base', '--out', 'proj/results'], "proj/results': holds files kdnotes did not write"),
    'out: the file system root': (['run', '004_base', '--out', '/'], "out='/': holds files kdnotes did not write"),
    "out: another experiment's results": (['run', '004_regression', '--preset', 'paper', '--out', 'proj/results/004_base/paper'],
                                          'holds the results of 004_base (paper), not the results of 004_regression (paper)'),
    'out: the same experiment under another preset': (['run', '004_base', '--out', 'proj/results/004_base/paper'],
                                                      'holds the results of 004_base (paper), not the results of 004_base (smoke)'),
    'out: results whose provenance names another preset': (['run', '004_base', '--out', 'disagree'], "disagree': holds files kdnotes did not write"),
    'out: results whose metrics.json is cut short': (['run', '004_base', '--out', 'damaged'], "damaged': holds files kdnotes did not write"),
    'out: a file': (['run', '004_base', '--out', 'file.txt'], "file.txt': is a file, not a folder"),
    'out: a symbolic link to an empty folder': (['run', '004_base', '--out', 'link'], "link': is a symbolic link"),
    'out: a folder under a file': (['run', '004_base', '--out', 'file.txt/sub'], 'file.txt: '),
    'out: empty': (['run', '004_base', '--out', ''], "out='': expected a path"),
    'out: a name too long to write': (['run', '004_base', '--out', 'x'*300], 'a name of 300 bytes; expected at most 240'),
    'out: a default place held by a user': (['run', '004_domains', '--preset', 'paper'], "004_domains/paper': holds files kdnotes did not write", 'proj'),
    'seeds: repeated': (['run', '004_base', '--seeds', '3', '3'], 'seeds=[3, 3]: 3 is given twice'),
    'seeds: repeated apart': (['run', '004_base', '--seeds', '1', '2', '1'], '1 is given twice'),
    'seeds: negative': (['run', '004_base', '--seeds', '-1'], '-1 is not an integer from 0 to 4294967295'),
    'seeds: 2**32': (['run', '004_base', '--seeds', '4294967296'], '4294967296 is not an integer from 0'),
    'seeds: huge': (['run', '004_base', '--seeds', '99999999999999999999'], '99999999999999999999 is not an integer from 0'),
    'seeds: a fraction': (['run', '004_base', '--seeds', '1.5'], "invalid int value: '1.5'"),
    'seeds: none after the option': (['run', '004_base', '--seeds'], 'expected at least one argument'),
    'device: a bad index': (['run', '004_base', '--device', 'cpu:x'], "device='cpu:x'"),
    'device: a bad CUDA index': (['run', '004_base', '--device', 'cuda:x'], "device='cuda:x'"),
    'device: a GPU not there': (['run', '004_base', '--device', 'cuda:99'], "device='cuda:99'"),
    'device: empty': (['run', '004_base', '--device', ''], "device=''"),
    'device: upper case': (['run', '004_base', '--device', 'CPU'], "device='CPU'"),
    'data dir: missing': (['run', '004_base', '--data-dir', 'nowhere'], "nowhere': no such folder"),
    'data dir: a file': (['run', '004_base', '--data-dir', 'file.txt'], "file.txt': no such folder"),
    'experiment: a path': (['run', '../004_base'], "unknown experiment '../004_base'"),
    'preset: a path': (['run', '004_base', '--preset', '../paper'], "preset='../paper'"),
    'run: an unknown option': (['run', '004_base', '--outdir', 'x'], 'unrecognized arguments: --outdir'),
    'run: an option without its value': (['run', '004_base', '--out'], 'expected one argument'),
    'list: an extra argument': (['list', 'x'], 'unrecognized arguments: x'),
    'reproduce: repeated seeds': (['reproduce', '--seeds', '0', '0'], '0 is given twice'),
    'reproduce: a bad device': (['reproduce', '--device', 'cpu:1'], "device='cpu:1'"),
    'reproduce: a missing data folder': (['reproduce', '--data-dir', 'nowhere'], 'no such folder'),
    "reproduce: a user's folder where one result goes": (['reproduce', '--preset', 'paper'], "004_domains/paper': holds files kdnotes did not write", 'proj'),
    'report: results is a file': (['report', '--results', 'file.txt'], 'no results folder with a metrics.json'),
    'report: a damaged metrics.json': (['report', '--results', 'damaged_results', '--index', 'proj/nbs/index.ipynb', '--readme', 'new.md'],
                                       'damaged_results/004_base/smoke/metrics.json: not valid JSON'),
    'report: a metrics.json in the wrong place': (['report', '--results', 'misplaced', '--index', 'proj/nbs/index.ipynb', '--readme', 'new.md'],
                                                  'names 004_regression (paper) but lies in 004_base/paper'),
    'report: README is a folder': (['report', '--readme', 'mine', '--results', 'proj/results', '--index', 'proj/nbs/index.ipynb'], "mine': is a folder"),
    "report: README is a user's file": (['report', '--readme', 'file.txt', '--results', 'proj/results', '--index', 'proj/nbs/index.ipynb'],
                                        "file.txt': not a README that kdnotes report wrote"),
    "report: the project's own README, not written by kdnotes": (['report'], "README.md': not a README that kdnotes report wrote", 'proj'),
    'report: the front page missing': (['report', '--results', 'proj/results', '--index', 'none.ipynb'], "none.ipynb': expected the front page"),
    'report: the front page a folder': (['report', '--results', 'proj/results', '--index', 'mine'], "mine': expected the front page"),
    'book: out is a file': (['book', '--out', '../file.txt'], "file.txt': is a file, not a folder", 'proj'),
    'book: out is the project': (['book', '--out', '.'], 'not the project or a folder holding it', 'proj'),
    "book: out is the project's notebooks": (['book', '--out', 'nbs'], "nbs': holds files kdnotes did not write, not a kdnotes book", 'proj'),
    "book: out is a user's folder": (['book', '--out', '../mine'], "mine': holds files kdnotes did not write, not a kdnotes book", 'proj'),
    'book: outside any project': (['book', '--out', '../new'], 'expected a kdnotes project folder', 'mine'),
    'book: a damaged metrics.json': (['book', '--out', '../newbook'], 'metrics.json: not valid JSON', 'proj_damaged'),
    'data: no action': (['data'], 'the following arguments are required: ACTION'),
    'data fetch: nothing named': (['data', 'fetch'], 'the following arguments are required: NAME'),
    'data fetch: an unknown data set': (['data', 'fetch', 'svhn'], "invalid choice: 'svhn'"),
    'data fetch: a damaged manifest': (['data', 'fetch', 'mnist', '--data-dir', '.'], "work/MANIFEST.json: not valid JSON"),
    "data fetch: over a user's copy": (['data', 'fetch', 'mnist', '--data-dir', 'usercopy'], 'train-images-idx3-ubyte.gz: already there and not listed'),
    'data fetch: into a file': (['data', 'fetch', 'cifar10', '--data-dir', 'file.txt'], 'file.txt: '),
    'data fetch: no network': (['data', 'fetch', 'cifar10', '--data-dir', 'newdata'], 'cifar10: the download through torchvision failed'),
    'data fetch: no network, weights': (['data', 'fetch', 'vgg19', '--data-dir', 'newdata'], 'vgg19: the download through torchvision failed'),
}

def _sandbox_extras(work:Path):
    "The sandbox's folders that some cases need beyond the decoys."
    write_results(work/'disagree', '004_base', 'smoke'); (work/'disagree'/'provenance.json').write_text('{"experiment": "004_base", "preset": "paper"}')
    write_results(work/'damaged', '004_base', 'smoke'); _cut(work/'damaged'/'metrics.json')
    write_results(work/'damaged_results'/'004_base'/'smoke', '004_base', 'smoke'); _cut(work/'damaged_results'/'004_base'/'smoke'/'metrics.json')
    write_results(work/'misplaced'/'004_base'/'paper', '004_regression', 'paper')
    (work/'usercopy'/'MNIST'/'raw').mkdir(parents=True); (work/'usercopy'/'MNIST'/'raw'/'train-images-idx3-ubyte.gz').write_bytes(b'mine')
    (work/'empty').mkdir(); (work/'link').symlink_to(work/'empty')
    make_project(work/'proj_damaged'); _cut(work/'proj_damaged'/'results'/'004_base'/'paper'/'metrics.json')

@pytest.mark.parametrize('case', SANDBOX_CASES)
def test_cli_refuses_before_any_work(case, sandbox):
    args, message, *cwd = SANDBOX_CASES[case]
    files = make_decoys(sandbox); _sandbox_extras(sandbox)
    files = sorted(p for p in sandbox.rglob('*') if p.is_file()); before = snapshot(files)
    with working_directory(sandbox/cwd[0]) if cwd else nullcontext(): code, out, err = run_main(*args)
    assert_clear_error(code, err, args)
    assert code == 2 and message in err.splitlines()[-1], err[-2000:]
    assert snapshot(files) == before, 'a file was changed or removed'
    assert sorted(p for p in sandbox.rglob('*') if p.is_file()) == files, 'a file was written'

# ---------------------------------------------------------------- a read-only or a full disk
def _read_only(under:Path):
    "os.mkdir and os.open refusing to create anything under `under`, as on a read-only disk."
    mkdir, open_ = os.mkdir, os.open
    def check(path):
        if Path(os.fspath(path)).absolute().is_relative_to(under): raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
    def ro_mkdir(path, *a, **k): check(path); return mkdir(path, *a, **k)
    def ro_open(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT): check(path)
        return open_(path, flags, *a, **k)
    return ro_mkdir, ro_open

READ_ONLY_CASES = {'run': (['run', '004_base', '--out', 'ro/results'], 'ro'), 'book': (['book', '--out', '../ro/book'], 'proj'),
                   'data fetch': (['data', 'fetch', 'mnist', '--data-dir', 'ro/data'], '.')}

@pytest.mark.parametrize('case', READ_ONLY_CASES)
def test_read_only_disk_is_one_line_naming_the_path(case, sandbox, monkeypatch):
    args, cwd = READ_ONLY_CASES[case]
    (sandbox/'ro').mkdir()
    ro_mkdir, ro_open = _read_only(sandbox/'ro')
    monkeypatch.setattr(os, 'mkdir', ro_mkdir); monkeypatch.setattr(os, 'open', ro_open)
    with working_directory(sandbox/cwd): code, out, err = run_main(*args)
    assert_clear_error(code, err, args)
    assert 'Read-only file system' in err and str(sandbox/'ro') in err, err

def test_full_disk_in_the_last_copy_names_the_results_folder(sandbox, monkeypatch):
    "The results folder's copy fails for want of space: one line naming the folder; nothing left half-written."
    def no_space(*a, **k): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(shutil, 'copytree', no_space)
    code, out, err = run_main('run', '004_base', '--device', 'cpu', '--out', 'new/results')
    assert_clear_error(code, err, 'run')
    assert f"{sandbox/'new'/'results'}: No space left on device" in err, err
    assert sorted(p.name for p in (sandbox/'new').iterdir()) == [], 'a half-written folder was left'

def test_full_disk_in_report_names_the_file(tmp_path):
    "`kdnotes report` with every file limited to 40 bytes (a disk that fills up): one line naming the file, exit 2."
    project = make_project(tmp_path/'proj')
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (40, 40))
    r = subprocess.run([str(Path(sys.executable).with_name('kdnotes')), 'report'], cwd=project, capture_output=True, text=True,
                       preexec_fn=limit, env=os.environ | {'PYTHONDONTWRITEBYTECODE': '1', 'KDNOTES_CACHE': str(tmp_path/'cache')})
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert r.stderr.startswith('kdnotes: error: ') and 'File too large' in r.stderr and str(project) in r.stderr, r.stderr

def test_enough_cases():
    n = (len(CLI_CASES) + len(RUN_FAILS) + len(LIB_CASES) + len(DATA_CASES) + len(FORM_CASES) + len(SANDBOX_CASES) + len(READ_ONLY_CASES) + 2)
    assert n >= 90, n
