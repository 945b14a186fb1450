"""Benchmark: time and peak memory of one GTN meta-gradient by IFT and by gradient matching, relative to full unrolling.

For K = 8, 16, 32 inner steps (`--Ks`), the meta-gradient w.r.t. K fixed batches of generated images is computed by
each of `kdnotes.gtn`'s functions — `unrolled_meta_grad` (the baseline: backprop through all K steps, as GTN does),
the same checkpointed, `ift_meta_grad` with conjugate gradient and with a Neumann series (10 Hessian-vector products),
and `matching_meta_grad` — on one fresh learner, in this process with the same thread settings. The generator is left
out: its graph over the K·B generated images is the same for every mode and would hide the difference.

- time: median wall time of `--repeats` calls after one warm-up;
- memory: peak bytes of tensors allocated during one call (CUDA: the allocator's peak; CPU: counted by
  `kdnotes.gtn.peak_memory`, a dispatch mode that tracks live storages).

Prints the table and the ratios mode / unrolled (time and memory) per K, and writes them to `--out` as JSON.

    python bench/gtn.py                  # CPU-sized: learner 8/16 channels, batch 20 (about 2 minutes here)
    python bench/gtn.py --size paper     # GTN's MNIST learner 64/128, batch 128 (for a GPU)
"""
import argparse, os, sys, time

import torch

from kdnotes.core import get_device, provenance, save_json
from kdnotes.gtn import balanced_labels, ift_meta_grad, learner, matching_meta_grad, peak_memory, unrolled_meta_grad
from kdnotes.mtt import FlatNet

SIZES = {'cpu': dict(widths=(8, 16), batch=20, real_batch=50), 'paper': dict(widths=(64, 128), batch=128, real_batch=128)}
IFT = dict(iters=10, damping=0.1, scale=0.01)
MODES = {
    'unrolled': lambda a: unrolled_meta_grad(*a['common'], a['real']),
    'unrolled_ckpt': lambda a: unrolled_meta_grad(*a['common'], a['real'], checkpoint=True),
    'ift_cg': lambda a: ift_meta_grad(*a['common'], a['real'], method='cg', **IFT),
    'ift_neumann': lambda a: ift_meta_grad(*a['common'], a['real'], method='neumann', **IFT),
    'matching': lambda a: matching_meta_grad(*a['common'], a['real_per_step']),
}
NOTE = ('meta-gradient w.r.t. fixed generated batches (generator excluded); one fresh learner; MNIST-shaped random '
        'images; IFT: 10 Hessian-vector products; load_avg shows what else the machine ran')

def inputs(net, K, size, device, seed=0):
    "Arguments of the meta-gradient functions for K steps: learner, batches, step size, momentum, real batches."
    g = torch.Generator().manual_seed(seed)
    B, R = size['batch'], size['real_batch']
    xs = torch.randn(K, B, 1, 28, 28, generator=g).to(device)
    ys = balanced_labels(10, B, device).expand(K, B)
    lr, mom = torch.tensor(0.05, device=device), torch.tensor(0.5, device=device)
    w0 = net.init([seed], device)[0]
    real = (torch.randn(R, 1, 28, 28, generator=g).to(device), torch.randint(10, (R,), generator=g).to(device))
    real_per_step = (torch.randn(K, R, 1, 28, 28, generator=g).to(device), balanced_labels(10, R, device).expand(K, R))
    return dict(common=(net, w0, xs, ys, lr, mom), real=real, real_per_step=real_per_step)

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)

def measure(fn, args, device, repeats):
    "Median seconds over `repeats` calls after a warm-up, and the peak bytes of one call."
    fn(args); sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(args); sync(device); times.append(time.perf_counter() - t0)
    return sorted(times)[len(times)//2], peak_memory(lambda: fn(args), device)[1]

def run(Ks, size, device, repeats):
    "Time, memory and ratios to `unrolled` of every mode at every K."
    net = FlatNet(lambda: learner(size['widths']))
    results = {}
    for K in Ks:
        args = inputs(net, K, size, device)
        r = {m: dict(zip(('s', 'peak_bytes'), measure(fn, args, device, repeats))) for m, fn in MODES.items()}
        for m in r:
            r[m]['time_ratio'] = r[m]['s']/r['unrolled']['s']; r[m]['memory_ratio'] = r[m]['peak_bytes']/r['unrolled']['peak_bytes']
        results[K] = r
    return results

def print_table(results):
    print(f"{'K':>3} {'mode':14} {'s':>8} {'MiB':>9} {'time/unrolled':>14} {'memory/unrolled':>16}")
    for K, r in results.items():
        for m, v in r.items():
            print(f"{K:3} {m:14} {v['s']:8.3f} {v['peak_bytes']/2**20:9.1f} {v['time_ratio']:14.2f} {v['memory_ratio']:16.3f}")

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', default='cpu', choices=sorted(SIZES), help='learner and batch sizes')
    p.add_argument('--Ks', default='8,16,32', help='comma-separated inner-step counts')
    p.add_argument('--repeats', type=int, default=2)
    p.add_argument('--device', default='auto')
    p.add_argument('--out', default='bench/results/gtn.json')
    args = p.parse_args(argv)
    args.Ks = [int(k) for k in args.Ks.split(',')]
    if min(args.Ks) < 1: p.error(f'--Ks {args.Ks}: expected positive integers')
    return args

def main(argv=None):
    args = parse_args(argv)
    device, size = get_device(args.device), SIZES[args.size]
    load_start = os.getloadavg()[0]
    results = run(args.Ks, size, device, args.repeats)
    print_table(results)
    save_json(dict(benchmark='gtn', note=NOTE, settings=dict(size=args.size, **size, Ks=args.Ks, repeats=args.repeats, ift=IFT),
                   results={str(K): r for K, r in results.items()}, load_avg=[load_start, os.getloadavg()[0]],
                   **provenance(device, cores=os.cpu_count(), threads=torch.get_num_threads(), command=' '.join(['python', *sys.argv]))),
              args.out)
    print(f'wrote {args.out}')

if __name__ == '__main__': main()
