"""Data that cannot be fooled: the decoded cache follows the files it came from and notices damage; the original
CIFAR-10 is read where it is, the JPEG copy otherwise, and the run's provenance names the copy. Small sets in
torchvision's formats are written here; nothing needs the network."""
import io, tarfile
from pathlib import Path
import pytest
import torch
import torchvision

from kdnotes.core import DATA_USED, provenance
from kdnotes.data import CIFAR10_BATCHES, IDX_FILES, load_dataset, write_cifar_batch, write_idx

def tiny_mnist(root:Path, value:int, gz:bool=True) -> Path:
    "A data folder holding a 4-image MNIST whose every pixel is `value`, its files gzipped or not."
    (root/'MNIST'/'raw').mkdir(parents=True)
    for f in IDX_FILES:
        write_idx(torch.full((4, 28, 28) if 'images' in f else (4,), value, dtype=torch.uint8), root/'MNIST'/'raw'/(f + ('.gz' if gz else '')))
    return root

@pytest.fixture
def no_data(tmp_path, monkeypatch):
    monkeypatch.setenv('KDNOTES_CACHE', str(tmp_path/'cache')); monkeypatch.delenv('KDNOTES_DATA', raising=False)
    return tmp_path

def test_the_cache_follows_the_files(no_data):
    "After a load from a folder of other files, the right folder is read, not the copy decoded from the wrong one."
    wrong, right = tiny_mnist(no_data/'wrong', 1), tiny_mnist(no_data/'right', 2, gz=False)
    assert load_dataset('mnist', data_dir=wrong)['train'].x.unique().tolist() == [1]
    assert load_dataset('mnist', data_dir=right)['train'].x.unique().tolist() == [2]
    assert load_dataset('mnist', data_dir=wrong)['train'].x.unique().tolist() == [1]

def test_a_damaged_cache_entry_is_decoded_again(no_data, capsys):
    data = tiny_mnist(no_data/'data', 3)
    load_dataset('mnist', data_dir=data)
    [entry] = (no_data/'cache'/'decoded').glob('mnist-*.pt')
    b = bytearray(entry.read_bytes()); b[-30] ^= 0xFF; entry.write_bytes(bytes(b))       # altered in the cache
    assert load_dataset('mnist', data_dir=data)['test'].x.unique().tolist() == [3]
    assert f'{entry}: the decoded copy does not match its stored sha256; decoding mnist again' in capsys.readouterr().err
    load_dataset('mnist', data_dir=data)
    assert 'does not match' not in capsys.readouterr().err                              # rebuilt whole
    entry.with_name(entry.name + '.sha256').unlink()                                    # its digest lost (a kill between the writes)
    assert load_dataset('mnist', data_dir=data)['test'].x.unique().tolist() == [3]
    assert 'decoding mnist again' in capsys.readouterr().err

def test_cifar10_is_the_original_where_found_and_the_copy_is_recorded(no_data):
    original = no_data/'original'
    (original/'cifar-10-batches-py').mkdir(parents=True)
    for i, b in enumerate(CIFAR10_BATCHES): write_cifar_batch(torch.full((2, 3, 32, 32), i, dtype=torch.uint8), torch.tensor([i, 9]), original/'cifar-10-batches-py'/b)
    sets = load_dataset('cifar10', data_dir=original)
    assert len(sets['train']) == 10 and sets['test'].y.tolist() == [5, 9] and DATA_USED['cifar10'] == 'cifar10'
    assert provenance('cpu')['data']['cifar10'] == 'cifar10'
    load_dataset('cifar10', 'mini')
    assert provenance('cpu')['data']['cifar10'] == 'cifar10-jpeg (mini set)'

def test_cifar10_falls_back_to_the_jpeg_copy_saying_so(no_data, capsys):
    "With only a JPEG copy in the data folder, 'cifar10' loads it, says so and records it."
    with tarfile.open(no_data/'cifar10-jpeg.tar.xz', 'w:xz') as tar:
        for split, cls in [('train', 'ship'), ('test', 'frog')]:
            data = torchvision.io.encode_jpeg(torch.zeros(3, 32, 32, dtype=torch.uint8)).numpy().tobytes()
            info = tarfile.TarInfo(f'cifar10/{split}/{cls}/0000.jpg'); info.size = len(data); tar.addfile(info, io.BytesIO(data))
    sets = load_dataset('cifar10', data_dir=no_data)
    assert sets['test'].y.tolist() == [6] and DATA_USED['cifar10'] == 'cifar10-jpeg'
    assert 'using the JPEG copy, cifar10-jpeg' in capsys.readouterr().err
