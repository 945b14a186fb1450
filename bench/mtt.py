"""Benchmark: MTT's two costly loops — the experts against MTT's own training loop, checkpointed vs plain unroll.

(a) Expert throughput: ConvNetD3 experts trained for one epoch (SGD lr 0.01, batch 256, DSA) on a random subset of
CIFAR-10-JPEG (the copy is sorted by class, so a subset is drawn, never the first images), in four ways:

- baseline (as MTT's `buffer.py` does it): one expert after another, each an `nn.Module` with `torch.optim.SGD`, its
  batches from a `DataLoader(TensorDataset(...), batch_size=256, shuffle=True)` over the preprocessed images on the
  CPU, moved to the device batch by batch and augmented there;
- library: what `kdnotes.mtt.train_experts` runs per epoch on this device — `sgd_epoch` with its default path (on a
  GPU the vmapped stack; on a CPU each expert's gradient by autograd on its row of the stack, inside
  `keep_freed_memory`, which keeps glibc from unmapping and re-faulting every large tensor);
- vmap: `sgd_epoch(stacked=True)`, the GPU path, timed on a CPU too for reference;
- baseline_kept (CPU only): the baseline inside `keep_freed_memory`, to show where the library's gain comes from.

Each way runs in a fresh subprocess (an allocator setting or a warm heap must not carry over from one to the next),
after one warm-up batch; the sequence is repeated `repeats` times. Throughput is training images per second over all
experts; ratios are baseline time / other time, on process time on a CPU (steadier on a shared machine; it counts
the page faults' system time, a real cost) and on wall time on a GPU.

(b) One distillation iteration (IPC `ipc`, `syn_steps` inner steps, the whole synthetic set per step, DSA), forward
and backward, with the plain unroll (MTT's `create_graph` chain) and with per-step checkpointing
(`kdnotes.mtt.unroll(checkpoint=True)`), each in its own fresh subprocess so peaks do not mix, alternating
plain/checkpointed `repeats` times: time per iteration (mean of the `iters` iterations after the first; process and
wall time) and peak memory of the first iteration above what was held before it — on a GPU
`torch.cuda.max_memory_allocated`, on a CPU the process's peak resident set size (`VmHWM`, reset to the current size
through `/proc/self/clear_refs` just before the iteration; `ru_maxrss` would not do: a child inherits its parent's
peak at fork) minus its resident set size before the iteration, which counts the autograd graph and the allocator's
overhead alike. Both run under glibc's default allocator settings.

`bench/results/mtt.json` keeps one entry per size (`sizes.cpu`, `sizes.paper`), each with its own provenance; a run
replaces the entry of its size only.

    python bench/mtt.py                                   # cpu size: the mini set, ~5 min here
    python bench/mtt.py --size paper                      # CIFAR-10-JPEG (full data), ~25 min on a 2-core CPU
    python bench/mtt.py --size paper --device cuda --out bench/results/gpu/mtt.json
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from kdnotes.core import get_device, load_json, provenance, save_json
from kdnotes.data import epoch_batches, load_dataset
from kdnotes.mtt import (DSA, ConvNetD3, FlatNet, Preprocess, draw_plan, init_synthetic, keep_freed_memory, matching_loss,
                         sgd_epoch, unroll)
from kdnotes.models import seeded

SIZES = {  # data source; expert settings per width (images of the random subset, experts); distillation settings
    'cpu': dict(source='mini', experts=[dict(width=32, n_images=600, experts=4), dict(width=128, n_images=600, experts=2)],
                distill=dict(n_images=600, width=32, ipc=10, syn_steps=10, iters=2), repeats=2),
    'paper': dict(source='full', experts=[dict(width=128, n_images=2048, experts=2)],
                  distill=dict(n_images=2000, width=128, ipc=10, syn_steps=30, iters=3), repeats=2),
}
CUDA_EXPERTS = dict(n_images=10000, experts=8)   # on a GPU the expert subset is larger (paper size)
LR, BS, SUBSET_SEED = 0.01, 256, 0
NOTE = ('expert throughput: training images per second over all experts, one epoch after one warm-up batch, each way '
        'in a fresh subprocess, the sequence repeated; ratios baseline time / other time on process time (CPU) or wall '
        'time (GPU), summed over repeats. Distillation: each variant in a fresh subprocess, alternating, peak memory of '
        'its first iteration above the memory held before it (GPU: max_memory_allocated; CPU: VmHWM reset before, minus '
        'the RSS before), time the mean of the later iterations; load_avg shows what else the machine ran')

def cifar(source, n_images, device):
    "A random subset of preprocessed CIFAR-10-JPEG training images and labels (normalised, no ZCA: it does not change the cost)."
    train = load_dataset('cifar10-jpeg', source, device=device)['train']
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(SUBSET_SEED))[:n_images].to(device)
    x = train.batch(idx)[0]
    return Preprocess(x, zca=False)(x), train.y[idx]

def current_rss():
    "The process's resident set size now, in bytes (Linux)."
    return int(open('/proc/self/statm').read().split()[1])*os.sysconf('SC_PAGE_SIZE')

def peak_rss():
    "The process's peak resident set size (VmHWM), in bytes (Linux)."
    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))
    return int(line.split()[1])*1024

def reset_peak_rss():
    "Set the peak resident set size to the current one (Linux 4.0+: '5' to /proc/self/clear_refs)."
    with open('/proc/self/clear_refs', 'w') as f: f.write('5')

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()

def clocks(device, f):
    "Wall and process seconds of `f()`."
    sync(device); w, c = time.perf_counter(), time.process_time()
    f(); sync(device)
    return time.perf_counter() - w, time.process_time() - c

def experts_library(net, X, Y, seeds, device, stacked=None):
    "Wall and process time of one epoch of all experts by `sgd_epoch` as `train_experts` runs it (after a warm-up batch)."
    params = net.init(seeds, device)
    order = [torch.Generator().manual_seed(s) for s in seeds]
    aug = [torch.Generator().manual_seed(s + 2**32) for s in seeds]
    with keep_freed_memory(device.type == 'cpu'):
        sgd_epoch(net, params, X, Y, epoch_batches(len(X), BS, order)[:1], LR, DSA(), aug, stacked=stacked)
        return clocks(device, lambda: sgd_epoch(net, params, X, Y, epoch_batches(len(X), BS, order), LR, DSA(), aug, stacked=stacked))

def experts_one_at_a_time(make, X, Y, seeds, device):
    "Wall and process time of one epoch of each expert in turn, MTT's buffer.py way (after a warm-up batch)."
    loader_set, dsa, wall, cpu = TensorDataset(X.cpu(), Y.cpu()), DSA(), 0., 0.
    for i, s in enumerate(seeds):
        model = seeded(make, s).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        torch.manual_seed(s); g = torch.Generator(device='cpu').manual_seed(s + 2**32)
        loader = DataLoader(loader_set, batch_size=BS, shuffle=True, num_workers=0)
        def step(x, y):
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(dsa(x, g)), y)
            opt.zero_grad(); loss.backward(); opt.step()
        if i == 0: step(*next(iter(loader))); sync(device)
        def epoch():
            for x, y in loader: step(x, y)
        w, c = clocks(device, epoch)
        wall, cpu = wall + w, cpu + c
    return wall, cpu

def experts_child(size, device, variant, width, n_images, experts):
    "One way of training the experts for one epoch, in this (fresh) process: wall and process seconds."
    dev = get_device(device)
    X, Y = cifar(SIZES[size]['source'], n_images, dev)
    make, seeds, load = (lambda: ConvNetD3(width=width)), list(range(experts)), os.getloadavg()[0]
    if variant == 'baseline': wall, cpu = experts_one_at_a_time(make, X, Y, seeds, dev)
    elif variant == 'baseline_kept':
        with keep_freed_memory(): wall, cpu = experts_one_at_a_time(make, X, Y, seeds, dev)
    else: wall, cpu = experts_library(FlatNet(make), X, Y, seeds, dev, stacked=True if variant == 'vmap' else None)
    return dict(wall_s=wall, cpu_s=cpu, n_images=len(X), load_avg=[load, os.getloadavg()[0]])

def distill_child(size, device, checkpoint):
    "One variant of the distillation iteration, run in this (fresh) process: time per iteration and peak memory."
    cfg, dev = SIZES[size]['distill'], get_device(device)
    X, Y = cifar(SIZES[size]['source'], cfg['n_images'], dev)
    net = FlatNet(lambda: ConvNetD3(width=cfg['width']))
    start, target = net.init([0, 1], dev)
    images, labels = init_synthetic(X, Y, 10, cfg['ipc'], torch.Generator().manual_seed(0))
    images.requires_grad_(); lr = torch.tensor(0.01, device=dev, requires_grad=True)
    plan = lambda i: draw_plan(len(images), cfg['syn_steps'], len(images), (32, 32), DSA(), torch.Generator().manual_seed(i))
    def iteration(i):
        loss = matching_loss(unroll(net, start, images, labels, lr, plan(i), DSA(), checkpoint=checkpoint), start, target)
        loss.backward(); images.grad = lr.grad = None
        return loss.item()
    del X, Y
    load = os.getloadavg()[0]
    if dev.type == 'cuda':
        torch.cuda.empty_cache(); before = torch.cuda.memory_allocated(dev); torch.cuda.reset_peak_memory_stats(dev)
    else: reset_peak_rss(); before = current_rss()
    iteration(0); sync(dev)                        # the first iteration: its peak memory (and warm-up for the clock)
    peak = torch.cuda.max_memory_allocated(dev) if dev.type == 'cuda' else peak_rss()
    walls, cpus = zip(*[clocks(dev, lambda: iteration(i)) for i in range(1, cfg['iters'] + 1)])
    return dict(s_per_iter=sum(walls)/len(walls), cpu_s_per_iter=sum(cpus)/len(cpus), times=list(walls), cpu_times=list(cpus),
                peak_MB=(peak - before)/2**20, load_avg=[load, os.getloadavg()[0]],
                measure='cuda max_memory_allocated' if dev.type == 'cuda' else 'peak RSS (VmHWM, reset before the iteration) minus RSS before it')

def run_child(size, device, job):
    "Run one job (`experts_child` or `distill_child` arguments) in a fresh interpreter and read its JSON result."
    cmd = [sys.executable, __file__, '--size', size, '--device', device, '--child', json.dumps(job)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    if r.returncode: raise RuntimeError(f'{" ".join(cmd)} failed:\n{r.stderr[-3000:]}')
    return json.loads(r.stdout.strip().splitlines()[-1])

def bench_experts(size, device):
    "Expert throughput of every way at every width, the sequence repeated, and the ratios to the baseline."
    cuda = device.type == 'cuda'
    variants = ['baseline', 'library'] + ([] if cuda else ['baseline_kept', 'vmap'])
    clock = 'wall_s' if cuda else 'cpu_s'
    out = []
    for e in SIZES[size]['experts']:
        e = {**e, **(CUDA_EXPERTS if cuda and size == 'paper' else {})}
        runs = {v: [] for v in variants}
        for _ in range(SIZES[size]['repeats']):
            for v in variants: runs[v].append(run_child(size, str(device), dict(kind='experts', variant=v, **e)))
        n = e['experts']*runs['baseline'][0]['n_images']
        total = {v: sum(r[clock] for r in rs) for v, rs in runs.items()}
        out.append(dict(e, n_images=runs['baseline'][0]['n_images'], clock=clock, runs=runs,
                        images_per_s={v: n*len(rs)/total[v] for v, rs in runs.items()},
                        ratio_to_baseline={v: total['baseline']/total[v] for v in variants if v != 'baseline'}))
    return out

def bench_distill(size, device):
    "Time and peak memory of one distillation iteration, plain and checkpointed (alternating), and their ratios."
    runs = {'plain': [], 'checkpointed': []}
    for _ in range(SIZES[size]['repeats']):
        for k in runs: runs[k].append(run_child(size, device, dict(kind='distill', checkpoint=k == 'checkpointed')))
    mean = lambda k, key: sum(r[key] for r in runs[k])/len(runs[k])
    peak = lambda k: min(r['peak_MB'] for r in runs[k])
    clock = 's_per_iter' if device.startswith('cuda') else 'cpu_s_per_iter'   # on a shared CPU, process time is steadier
    return dict(**SIZES[size]['distill'], runs=runs, plain=dict(s_per_iter=mean('plain', 's_per_iter'), cpu_s_per_iter=mean('plain', 'cpu_s_per_iter'), peak_MB=peak('plain')),
                checkpointed=dict(s_per_iter=mean('checkpointed', 's_per_iter'), cpu_s_per_iter=mean('checkpointed', 'cpu_s_per_iter'), peak_MB=peak('checkpointed')),
                memory_ratio=peak('checkpointed')/peak('plain'), time_ratio=mean('checkpointed', clock)/mean('plain', clock),
                time_ratio_clock=clock, wall_time_ratio=mean('checkpointed', 's_per_iter')/mean('plain', 's_per_iter'),
                cpu_time_ratio=mean('checkpointed', 'cpu_s_per_iter')/mean('plain', 'cpu_s_per_iter'))

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', default='cpu', choices=sorted(SIZES), help='cpu: the mini set; paper: the full data, paper widths (default: %(default)s)')
    p.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda' (default: %(default)s)")
    p.add_argument('--child', help=argparse.SUPPRESS)
    p.add_argument('--out', default='bench/results/mtt.json', help='results file; the entry of this size is replaced (default: %(default)s)')
    return p.parse_args(argv)

def main(argv=None):
    args = parse_args(argv)
    if args.child:
        job = json.loads(args.child)
        kind = job.pop('kind')
        res = experts_child(args.size, args.device, **job) if kind == 'experts' else distill_child(args.size, args.device, **job)
        print(json.dumps(res)); return
    device, load_start, t0 = get_device(args.device), os.getloadavg()[0], time.time()
    experts = bench_experts(args.size, device)
    for e in experts:
        print(f"experts at width {e['width']} ({e['experts']} × {e['n_images']} images, {e['clock']}): " +
              ', '.join(f'{v} {ips:.0f} img/s' for v, ips in e['images_per_s'].items()))
        print('  vs the buffer.py loop: ' + ', '.join(f'{v} {r:.2f}×' for v, r in e['ratio_to_baseline'].items()))
    dist = bench_distill(args.size, str(device))
    for k in ('plain', 'checkpointed'):
        print(f"distillation iteration, {k:12}: {dist[k]['s_per_iter']:.3f} s wall, {dist[k]['cpu_s_per_iter']:.3f} s process time, "
              f"peak {dist[k]['peak_MB']:.1f} MB")
    print(f"checkpointed / plain: memory {dist['memory_ratio']:.3f}×, time {dist['time_ratio']:.2f}× ({dist['time_ratio_clock']}; "
          f"process {dist['cpu_time_ratio']:.2f}×, wall {dist['wall_time_ratio']:.2f}×)")
    entry = dict(settings=SIZES[args.size], experts=experts, distillation=dist, load_avg=[load_start, os.getloadavg()[0]],
                 wall_s=round(time.time() - t0, 1),
                 **provenance(device, cores=os.cpu_count(), threads=torch.get_num_threads(), command=' '.join(['python', *sys.argv])))
    out = Path(args.out)
    doc = load_json(out) if out.exists() else {}
    doc = dict(benchmark='mtt', note=NOTE, sizes={**doc.get('sizes', {}), args.size: entry})
    save_json(doc, out)
    print(f'wrote {out} (size {args.size})')

if __name__ == '__main__': main()
