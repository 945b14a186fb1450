"""Benchmark: one epoch of study 004's two-decoder VAE, device tensors gathered by index vs a DataLoader of pairs.

Trains `TwoDecoderVAE` (hidden 200, latent 64, Adam lr 1e-3, batch 64) for `--epochs` epochs on `--n` Fashion-Train
images, each paired with a same-class MNIST-Train digit, in two ways:

- ours: `kdnotes.domain.fit_vae` — both image sets on the device as uint8 tensors, each batch gathered by index;
- baseline (as the study's public code does it): a `Dataset` whose items are (Fashion image, paired digit) through
  torchvision's `ToTensor()`, a `DataLoader(batch_size=64, shuffle=True)`, and the same loss and Adam loop.

Both run in this process with the same thread settings, same model initialisation and pairing. Prints the time per
epoch of each side, the ratio, and the final epoch's mean loss of both (which should agree within noise).

    KDNOTES_DATA=/work/shared/data python bench/vae.py
"""
import argparse, os, sys, time

import torch
import torchvision
from torch.utils.data import DataLoader, Dataset

from kdnotes.core import get_device, provenance, save_json
from kdnotes.data import _tv_root, load_dataset
from kdnotes.domain import TwoDecoderVAE, fit_vae, pair_by_class, vae_loss
from kdnotes.models import seeded

LATENT, HIDDEN, LR, BS = 64, 200, 1e-3, 64

class Pairs(Dataset):
    "Fashion images with their paired MNIST digits, each through `ToTensor()` (the study's data path)."
    def __init__(self, fashion, mnist, pairs):
        self.fashion, self.mnist, self.pairs = fashion, mnist, pairs.tolist()
    def __len__(self): return len(self.pairs)
    def __getitem__(self, i): return self.fashion[i][0], self.mnist[self.pairs[i]][0]

def run_ours(fashion, mnist, pairs, epochs, seed):
    "Mean loss of the last epoch of `fit_vae`."
    vae = seeded(lambda: TwoDecoderVAE(LATENT, HIDDEN), seed).to(fashion.x.device)
    return fit_vae(vae, fashion, mnist, pairs, epochs, BS, LR, seed)[-1]

def run_baseline(dataset, epochs, seed, device):
    "Mean loss of the last epoch of the DataLoader loop."
    vae = seeded(lambda: TwoDecoderVAE(LATENT, HIDDEN), seed).to(device)
    opt = torch.optim.Adam(vae.parameters(), lr=LR)
    torch.manual_seed(seed)
    loader = DataLoader(dataset, batch_size=BS, shuffle=True)
    for _ in range(epochs):
        total = 0.
        for x, digit in loader:
            loss = vae_loss(vae, x.to(device), digit.to(device))
            opt.zero_grad(); loss.backward(); opt.step()
            total += loss.item()*len(x)
    return total/len(dataset)

def timed(fn, *args):
    "Wall time of `fn(*args)` and its result."
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out

def parse_args(argv=None):
    "The command-line options."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data-dir', default=os.environ.get('KDNOTES_DATA'), help='data folder (default: $KDNOTES_DATA)')
    p.add_argument('--n', type=int, default=60000, help='Fashion-Train images (the study: all 60000)')
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--device', default='auto')
    p.add_argument('--out', default='bench/results/vae.json')
    args = p.parse_args(argv)
    if not 1 <= args.n <= 60000: p.error(f'--n {args.n}: expected 1 to 60000')
    if args.epochs < 1: p.error(f'--epochs {args.epochs}: expected at least 1')
    return args

def main(argv=None):
    args = parse_args(argv)
    device, seed = get_device(args.device), 0
    fashion, mnist = (load_dataset(name, data_dir=args.data_dir, device=device)['train'] for name in ('fashion', 'mnist'))
    fashion = fashion.subset(torch.arange(args.n, device=device))
    pairs = pair_by_class(fashion.y.cpu(), mnist.y.cpu(), torch.Generator().manual_seed(seed))
    tf = torchvision.transforms.ToTensor()
    tv = {name: getattr(torchvision.datasets, cls)(_tv_root(name, args.data_dir, False), train=True, transform=tf)
          for name, cls in (('fashion', 'FashionMNIST'), ('mnist', 'MNIST'))}
    load_start = os.getloadavg()[0]
    ours_s, ours_loss = timed(run_ours, fashion, mnist, pairs, args.epochs, seed)
    base_s, base_loss = timed(run_baseline, Pairs(tv['fashion'], tv['mnist'], pairs), args.epochs, seed, device)
    per_epoch = dict(ours=ours_s/args.epochs, baseline=base_s/args.epochs)
    print(f"{args.n} pairs, {args.epochs} epoch(s): ours {per_epoch['ours']:.1f} s/epoch (last-epoch loss {ours_loss:.2f}), "
          f"DataLoader {per_epoch['baseline']:.1f} s/epoch (loss {base_loss:.2f}); ours is {base_s/ours_s:.1f}× faster")
    save_json(dict(benchmark='vae', settings=dict(n=args.n, epochs=args.epochs, latent=LATENT, hidden=HIDDEN, lr=LR, bs=BS),
                   epoch_s=per_epoch, last_epoch_loss=dict(ours=ours_loss, baseline=base_loss), ratio=base_s/ours_s,
                   load_avg=[load_start, os.getloadavg()[0]],
                   **provenance(device, cores=os.cpu_count(), threads=torch.get_num_threads(),
                                command=' '.join(['python', *sys.argv]))), args.out)
    print(f'wrote {args.out}')

if __name__ == '__main__': main()
