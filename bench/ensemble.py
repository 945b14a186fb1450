"""Benchmark: k student runs of study 004 as one stacked ensemble vs one run after another with a DataLoader.

Trains `--runs` students MLP [784, 64, 10] (Adam lr 1e-3, batch 100, `--epochs` epochs) on Fashion-Small (1000
images) and Fashion-Train (60000), evaluating the test set before training and after every epoch, in two ways:

- stacked: the data on the device as uint8 tensors, the runs as one `Stacked` ensemble trained by `kdnotes.train.fit`;
- baseline (as the study's public code does it): one fresh MLP per run, a torchvision `FashionMNIST` with
  `ToTensor()` (a `Subset` for Small), `DataLoader(batch_size=100, shuffle=True)`, a plain Adam loop, and the test
  set through a DataLoader after every epoch.

Both run in this process with the same thread settings; wall times cover model creation, training and test
evaluation (data sets are opened before the clocks start). Prints the times, the ratio and the final test
accuracies of both sides (which should agree within noise), and writes them to `--out` as JSON.

    KDNOTES_DATA=/work/shared/data python bench/ensemble.py
"""
import argparse, os, sys, time

import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, Subset

from kdnotes.core import get_device, provenance, save_json
from kdnotes.data import _tv_root, big_small_split, load_dataset
from kdnotes.models import MLP, Stacked, seeded
from kdnotes.train import fit, mean_std

SIZES, LR, BS, N_SMALL, SPLIT_SEED = [784, 64, 10], 1e-3, 100, 1000, 1234
NOTE = ('both sides in one process with the same torch threads; load_avg (1-min load at start and end) shows '
        'what else the machine ran; the baseline test DataLoader uses batch 100 like the training one')

def make_student():
    "A fresh student MLP of study 004."
    return MLP(SIZES)

def train_indices(set_name):
    "Indices of the training images of `set_name`: 'small' (study 004's Small part) or 'train' (all 60000)."
    return big_small_split(60000, N_SMALL, SPLIT_SEED)[1] if set_name == 'small' else torch.arange(60000)

def run_stacked(data, idx, seeds, epochs, device):
    "Train all runs as one stacked ensemble; final test accuracies and cross-entropies `(k,)`."
    model = Stacked.from_seeds(make_student, seeds, device)
    hist = fit(model, data['train'].subset(idx.to(device)), epochs, BS, seeds, lr=LR, test=data['test'])
    return hist['test_acc'][:, -1], hist['test_ce'][:, -1]

@torch.no_grad()
def loader_metrics(model, loader, device):
    "Test accuracy and mean cross-entropy of `model` over the batches of `loader`."
    correct = ce = 0.
    for x, y in loader:
        logits = model(x.to(device))
        correct += (logits.argmax(1) == y.to(device)).sum().item()
        ce += F.cross_entropy(logits, y.to(device), reduction='sum').item()
    return correct/len(loader.dataset), ce/len(loader.dataset)

def train_one(train_set, test_set, seed, epochs, device):
    "One run the DataLoader way; its test accuracy and cross-entropy after the last epoch."
    model = seeded(make_student, seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    torch.manual_seed(seed)
    train_dl = DataLoader(train_set, batch_size=BS, shuffle=True)
    test_dl = DataLoader(test_set, batch_size=BS)
    history = [loader_metrics(model, test_dl, device)]
    for _ in range(epochs):
        for x, y in train_dl:
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad(); loss.backward(); opt.step()
        history.append(loader_metrics(model, test_dl, device))
    return history[-1]

def torchvision_sets(root, idx):
    "The study's data sets: torchvision FashionMNIST with `ToTensor()`, the training one restricted to `idx`."
    tf = torchvision.transforms.ToTensor()
    train_set = Subset(torchvision.datasets.FashionMNIST(root, train=True, transform=tf), idx.tolist())
    return train_set, torchvision.datasets.FashionMNIST(root, train=False, transform=tf)

def run_baseline(train_set, test_set, seeds, epochs, device):
    "Train the runs one after another through DataLoaders; final test accuracies and cross-entropies `(k,)`."
    acc, ce = torch.tensor([train_one(train_set, test_set, s, epochs, device) for s in seeds]).T
    return acc, ce

def timed(fn, *args):
    "Wall time of `fn(*args)` and its result."
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out

def side_record(wall, metrics, n_images):
    "Wall time, training images per second and final test metrics (per run, mean and std) of one side."
    (acc_mean, ce_mean), (acc_std, ce_std) = mean_std(torch.stack(metrics, 1).numpy())
    return dict(wall_s=wall, images_per_s=n_images/wall, test_acc=metrics[0], test_ce=metrics[1],
                test_acc_mean=acc_mean, test_acc_std=acc_std, test_ce_mean=ce_mean, test_ce_std=ce_std)

def bench_set(set_name, data, root, seeds, epochs, device):
    "Time both sides on one training set; their records and the ratio."
    idx = train_indices(set_name)
    n_images = len(seeds)*epochs*len(idx)
    stacked = side_record(*timed(run_stacked, data, idx, seeds, epochs, device), n_images)
    baseline = side_record(*timed(run_baseline, *torchvision_sets(root, idx), seeds, epochs, device), n_images)
    return dict(n_train=len(idx), train_images=n_images, stacked=stacked, baseline=baseline,
                ratio=baseline['wall_s']/stacked['wall_s'])

def print_table(results):
    "Print wall times, throughput and final test metrics of both sides, then the ratio per set."
    print(f"{'set':6} {'side':9} {'wall s':>8} {'img/s':>9} {'test acc':>16} {'test CE':>16}")
    for name, r in results.items():
        for side in ('stacked', 'baseline'):
            s = r[side]
            print(f"{name:6} {side:9} {s['wall_s']:8.1f} {s['images_per_s']:9.0f} "
                  f"{s['test_acc_mean']:.4f} ± {s['test_acc_std']:.4f} {s['test_ce_mean']:.4f} ± {s['test_ce_std']:.4f}")
    for name, r in results.items():
        print(f"{name}: stacked is {r['ratio']:.1f}× faster than one-run-at-a-time DataLoader")

def parse_args(argv=None):
    "The command-line options."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data-dir', default=os.environ.get('KDNOTES_DATA'), help='data folder (default: $KDNOTES_DATA)')
    p.add_argument('--epochs', type=int, default=20)
    p.add_argument('--runs', type=int, default=5)
    p.add_argument('--sets', default='small,train', help="comma-separated: 'small', 'train'")
    p.add_argument('--device', default='auto')
    p.add_argument('--out', default='bench/results/ensemble.json')
    args = p.parse_args(argv)
    args.sets = args.sets.split(',')
    if not set(args.sets) <= {'small', 'train'}: p.error(f"--sets {','.join(args.sets)}: expected 'small' and/or 'train'")
    return args

def main(argv=None):
    args = parse_args(argv)
    device, seeds = get_device(args.device), list(range(args.runs))
    data = load_dataset('fashion', data_dir=args.data_dir, device=device)
    root = _tv_root('fashion', args.data_dir, False)
    load_start = os.getloadavg()[0]
    results = {s: bench_set(s, data, root, seeds, args.epochs, device) for s in args.sets}
    print_table(results)
    save_json(dict(benchmark='ensemble', note=NOTE,
                   settings=dict(sizes=SIZES, lr=LR, bs=BS, epochs=args.epochs, runs=args.runs, seeds=seeds),
                   sets=results, load_avg=[load_start, os.getloadavg()[0]],
                   **provenance(device, cores=os.cpu_count(), threads=torch.get_num_threads(),
                                command=' '.join(['python', *sys.argv]))), args.out)
    print(f'wrote {args.out}')

if __name__ == '__main__': main()
