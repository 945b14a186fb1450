"""Benchmark: k runs of a network called through one `vmap`, run by run on stacked tensors, and as separate modules.

For each network, `--runs` runs (batch `--bs` per run), three ways:

- `vmap`: one `kdnotes.models.Stacked` with `batched=True`;
- `loop`: one `Stacked` with `batched=False` (each run's slice through `functional_call`, its images channels-last,
  the outputs stacked);
- `separate`: the straightforward way, `runs` ordinary modules called one after another on ordinary (NCHW) tensors,
  each with its own Adam;

and two calls:

- `train`: one Adam step on the runs' summed cross-entropy (training mode, BatchNorm statistics updated);
- `forward`: one evaluation-mode forward without gradients, features included where the network returns them
  (what a frozen teacher costs a VID step).

Networks: study 003's student `Cifar_Very_Tiny` and teacher `Cifar_Tiny` (3×32×32 images), and study 004's
student MLP [784, 64, 10] (28×28 images), which has no convolutions. Calls are interleaved (one of each per round),
medians over `--reps` rounds. Prints milliseconds per call and the ratios vmap / loop and separate / loop (above 1:
`loop` is faster), and writes them to `--out` as JSON. `Stacked`'s default follows from it: `loop` for a network
with convolutions on a CPU, `vmap` otherwise.

    python bench/stacked.py                 # on the CPU
    python bench/stacked.py --device cuda --out bench/results/stacked_cuda.json
"""
import argparse, os, sys

import torch
import torch.nn.functional as F

from kdnotes.core import get_device, provenance, save_json
from kdnotes.models import MLP, Stacked, seeded
from kdnotes.vid import cifar_tiny, cifar_very_tiny
from vid import timings

NOTE = ('both ways in one process, interleaved calls, medians; load_avg (1-min load at start and end) shows what '
        'else the machine ran')
NETWORKS = {'cifar_very_tiny': (cifar_very_tiny, (3, 32, 32)), 'cifar_tiny': (cifar_tiny, (3, 32, 32)),
            'mlp_784_64_10': (lambda: MLP([784, 64, 10]), (1, 28, 28))}

def train_fn(make, shape, way, runs, bs, device):
    "A function doing one Adam step of `runs` networks called `way` on a fixed batch."
    x, y = torch.rand(runs, bs, *shape, device=device), torch.randint(0, 10, (runs, bs), device=device)
    if way == 'separate':
        nets = [seeded(make, r).to(device).train() for r in range(runs)]
        opts = [torch.optim.Adam(n.parameters(), lr=1e-3) for n in nets]
        def step():
            for n, o, xr, yr in zip(nets, opts, x, y):
                loss = F.cross_entropy(n(xr), yr); o.zero_grad(set_to_none=True); loss.backward(); o.step()
        return step
    s = Stacked.from_seeds(make, range(runs), device, way == 'vmap')
    opt = torch.optim.Adam(s.parameters(), lr=1e-3)
    def step():
        s.base.train()
        loss = F.cross_entropy(s(x).flatten(0, 1), y.flatten(), reduction='sum')/bs
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return step

def forward_fn(make, shape, way, runs, bs, device):
    "A function doing one evaluation-mode forward of `runs` networks called `way`, without gradients."
    x, kw = torch.rand(runs, bs, *shape, device=device), {'features': True} if shape[0] == 3 else {}   # the CNNs return features
    if way == 'separate':
        nets = [seeded(make, r).to(device).eval() for r in range(runs)]
        return torch.no_grad()(lambda: [n(xr, **kw) for n, xr in zip(nets, x)])
    s = Stacked.from_seeds(make, range(runs), device, way == 'vmap')
    s.base.eval()
    return torch.no_grad()(lambda: s(x, **kw))

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--runs', type=int, default=5)
    p.add_argument('--bs', type=int, default=128)
    p.add_argument('--reps', type=int, default=20)
    p.add_argument('--device', default='cpu')
    p.add_argument('--out', default='bench/results/stacked.json')
    return p.parse_args(argv)

def main(argv=None):
    args = parse_args(argv)
    device = torch.device(get_device(args.device))
    load_start = os.getloadavg()[0]
    fns = {f'{kind}_{name}_{way}': fn(make, shape, way, args.runs, args.bs, device)
           for kind, fn in (('train', train_fn), ('forward', forward_fn))
           for name, (make, shape) in NETWORKS.items() for way in ('vmap', 'loop', 'separate')}
    t = timings(fns, args.reps, device)
    ratios = {f'{kind}_{name} {way} / loop': t[f'{kind}_{name}_{way}']/t[f'{kind}_{name}_loop']
              for kind in ('train', 'forward') for name in NETWORKS for way in ('vmap', 'separate')}
    for k, v in t.items(): print(f'{k:32} {v*1e3:9.2f} ms')
    for k, v in ratios.items(): print(f'{k:40} {v:6.2f}x')
    save_json(dict(benchmark='stacked', note=NOTE, settings=dict(runs=args.runs, bs=args.bs, reps=args.reps),
                   ms={k: v*1e3 for k, v in t.items()}, ratios=ratios, load_avg=[load_start, os.getloadavg()[0]],
                   **provenance(device, cores=os.cpu_count(), threads=torch.get_num_threads(), command=' '.join(['python', *sys.argv]))),
              args.out)
    print(f'wrote {args.out}')

if __name__ == '__main__': main()
