"""Benchmark: MTT's two costly loops — stacked experts vs one at a time, checkpointed vs plain unroll.

(a) Expert throughput: `--experts` ConvNetD3 experts trained for one epoch (SGD lr 0.01, batch 256, DSA) in two ways:

- stacked: the images preprocessed on the device, the experts as one `(k, P)` parameter stack trained by
  `kdnotes.mtt.sgd_epoch(stacked=True)` (vmap over the experts, each with its own shuffle and augmentation draw);
- network by network: the same `sgd_epoch` with `stacked=False` (`torch.func.grad` per expert, no vmap) — what
  `train_experts` does by default on a CPU;
- baseline (as MTT's `buffer.py` does it): one expert after another, each an `nn.Module` with `torch.optim.SGD`, its
  batches from a `DataLoader(TensorDataset(...), batch_size=256, shuffle=True)` over the preprocessed images on the
  CPU, moved to the device batch by batch and augmented there.

Throughput is training images per second over all experts (k × images / wall time); the ratio is
baseline time / other time. On a 2-core CPU the vmapped stack is not expected to win (the issue measured ~0.7×); it
exists for GPUs, and the library picks the network-by-network path on a CPU. Both sides run in this process after one warm-up batch each.

(b) One distillation iteration (IPC `--ipc`, `--syn-steps` inner steps, the whole synthetic set per step, DSA),
forward and backward, with the plain unroll (MTT's `create_graph` chain) and with per-step checkpointing
(`kdnotes.mtt.unroll(checkpoint=True)`), each in its own fresh subprocess so peaks do not mix: time per iteration
(mean of the iterations after the first) and peak memory of the first iteration above what was held before it — on a
GPU `torch.cuda.max_memory_allocated`, on a CPU the process's peak resident set size (`VmHWM`, reset to the current
size through `/proc/self/clear_refs` just before the iteration; `ru_maxrss` would not do: a child inherits its
parent's peak at fork) minus its resident set size before the iteration, which counts the autograd graph and the
allocator's overhead alike.

    python bench/mtt.py                                   # CPU size, CIFAR-10-JPEG mini set, ~3 min here
    KDNOTES_DATA=/path/to/data python bench/mtt.py --size paper --device cuda
"""
import argparse, json, os, subprocess, sys, time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from kdnotes.core import get_device, provenance, save_json
from kdnotes.data import epoch_batches, load_dataset
from kdnotes.mtt import DSA, ConvNetD3, FlatNet, Preprocess, draw_plan, init_synthetic, matching_loss, sgd_epoch, unroll
from kdnotes.models import seeded

SIZES = {  # data source, images for the expert epoch, experts, width, IPC, inner steps, timed iterations
    'cpu': dict(source='mini', n_images=600, experts=4, width=32, ipc=10, syn_steps=10, iters=2),
    'paper': dict(source='full', n_images=50000, experts=10, width=128, ipc=10, syn_steps=30, iters=5),
}
LR, BS = 0.01, 256
NOTE = ('expert throughput: training images per second over all experts, one epoch, after one warm-up batch per side; '
        'distillation: each variant in a fresh subprocess, peak memory of its first iteration above the memory held '
        'before it (GPU: max_memory_allocated; CPU: VmHWM reset before, minus the RSS before), time the mean of the later '
        'iterations; load_avg shows what else the machine ran')

def cifar(source, n_images, device):
    "Preprocessed CIFAR-10-JPEG training images and labels (normalised, no ZCA: whitening does not change the cost)."
    train = load_dataset('cifar10-jpeg', source, device=device)['train']
    x = train.batch(torch.arange(min(n_images, len(train)), device=device))[0]
    return Preprocess(x, zca=False)(x), train.y[:len(x)]

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

def experts_stacked(net, X, Y, seeds, device, stacked):
    "Wall time of one epoch of all experts by `sgd_epoch` (after a warm-up batch); `stacked` as `sgd_epoch` takes it."
    params = net.init(seeds, device)
    order = [torch.Generator().manual_seed(s) for s in seeds]
    aug = [torch.Generator().manual_seed(s + 2**32) for s in seeds]
    sgd_epoch(net, params, X, Y, epoch_batches(len(X), BS, order)[:1], LR, DSA(), aug, stacked=stacked); sync(device)
    t = time.perf_counter()
    params, _ = sgd_epoch(net, params, X, Y, epoch_batches(len(X), BS, order), LR, DSA(), aug, stacked=stacked); sync(device)
    return time.perf_counter() - t

def experts_one_at_a_time(make, X, Y, seeds, device):
    "Wall time of one epoch of each expert in turn, MTT's buffer.py way (after a warm-up batch)."
    loader_set, dsa, total = TensorDataset(X.cpu(), Y.cpu()), DSA(), 0.
    for i, s in enumerate(seeds):
        model = seeded(make, s).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        torch.manual_seed(s); g = torch.Generator(device='cpu').manual_seed(s + 2**32)
        loader = DataLoader(loader_set, batch_size=BS, shuffle=True, num_workers=0)
        def step(x, y):
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(dsa(x, g)), y)
            opt.zero_grad(); loss.backward(); opt.step()
        if i == 0:
            step(*next(iter(loader))); sync(device)
        t = time.perf_counter()
        for x, y in loader: step(x, y)
        sync(device); total += time.perf_counter() - t
    return total

def distill_child(size, device, checkpoint):
    "One variant of the distillation iteration, run in this (fresh) process: time per iteration and peak memory."
    cfg, dev = SIZES[size], get_device(device)
    X, Y = cifar(cfg['source'], 5000 if size == 'paper' else cfg['n_images'], dev)
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
    if dev.type == 'cuda':
        torch.cuda.empty_cache(); before = torch.cuda.memory_allocated(dev); torch.cuda.reset_peak_memory_stats(dev)
    else: reset_peak_rss(); before = current_rss()
    iteration(0); sync(dev)                        # the first iteration: its peak memory (and warm-up for the clock)
    peak = torch.cuda.max_memory_allocated(dev) if dev.type == 'cuda' else peak_rss()
    times, cpu0 = [], time.process_time()
    for i in range(1, cfg['iters'] + 1):
        t = time.perf_counter(); iteration(i); sync(dev); times.append(time.perf_counter() - t)
    cpu_s = (time.process_time() - cpu0)/cfg['iters']
    return dict(s_per_iter=sum(times)/len(times), cpu_s_per_iter=cpu_s, times=times, peak_MB=(peak - before)/2**20,
                measure='cuda max_memory_allocated' if dev.type == 'cuda' else 'peak RSS (VmHWM, reset before the iteration) minus RSS before it')

def run_child(size, device, checkpoint):
    "Run `distill_child` in a fresh interpreter and read its JSON result."
    cmd = [sys.executable, __file__, '--size', size, '--device', device, '--child', 'checkpointed' if checkpoint else 'plain']
    r = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    if r.returncode: raise RuntimeError(f'{" ".join(cmd)} failed:\n{r.stderr[-3000:]}')
    return json.loads(r.stdout.strip().splitlines()[-1])

def bench_experts(size, device):
    "Expert throughput of both ways and their ratio."
    cfg = SIZES[size]
    X, Y = cifar(cfg['source'], cfg['n_images'], device)
    make = lambda: ConvNetD3(width=cfg['width'])
    seeds, n = list(range(cfg['experts'])), cfg['experts']*len(X)
    stacked = experts_stacked(FlatNet(make), X, Y, seeds, device, True)
    per_net = experts_stacked(FlatNet(make), X, Y, seeds, device, False)
    baseline = experts_one_at_a_time(make, X, Y, seeds, device)
    auto = stacked if device.type != 'cpu' else per_net          # what train_experts does by default on this device
    side = lambda w: dict(wall_s=w, images_per_s=n/w)
    return dict(n_images=len(X), experts=len(seeds), width=cfg['width'], stacked=side(stacked), per_network=side(per_net),
                baseline=side(baseline), ratio=baseline/stacked, ratio_per_network=baseline/per_net, ratio_library_default=baseline/auto)

def bench_distill(size, device):
    "Time and peak memory of one distillation iteration, plain and checkpointed, and their ratios."
    plain, ckpt = run_child(size, device, False), run_child(size, device, True)
    clock = 's_per_iter' if device.startswith('cuda') else 'cpu_s_per_iter'   # on a shared CPU, process time is steadier
    return dict(ipc=SIZES[size]['ipc'], syn_steps=SIZES[size]['syn_steps'], width=SIZES[size]['width'], plain=plain,
                checkpointed=ckpt, memory_ratio=ckpt['peak_MB']/plain['peak_MB'], time_ratio=ckpt[clock]/plain[clock],
                time_ratio_clock=clock, wall_time_ratio=ckpt['s_per_iter']/plain['s_per_iter'])

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', default='cpu', choices=sorted(SIZES))
    p.add_argument('--device', default='auto')
    p.add_argument('--child', choices=['plain', 'checkpointed'], help=argparse.SUPPRESS)
    p.add_argument('--out', default='bench/results/mtt.json')
    return p.parse_args(argv)

def main(argv=None):
    args = parse_args(argv)
    if args.child:
        print(json.dumps(distill_child(args.size, args.device, args.child == 'checkpointed'))); return
    device, load_start = get_device(args.device), os.getloadavg()[0]
    experts = bench_experts(args.size, device)
    print(f"experts ({experts['experts']} × {experts['n_images']} images, width {experts['width']}): vmapped stack "
          f"{experts['stacked']['images_per_s']:.0f} img/s, sgd_epoch network by network {experts['per_network']['images_per_s']:.0f} img/s, "
          f"one at a time with a DataLoader {experts['baseline']['images_per_s']:.0f} img/s")
    print(f"vs the DataLoader loop: vmapped stack {experts['ratio']:.2f}×, network by network {experts['ratio_per_network']:.2f}×, "
          f"the library's default on {device.type} {experts['ratio_library_default']:.2f}×")
    dist = bench_distill(args.size, str(device))
    for k in ('plain', 'checkpointed'):
        print(f"distillation iteration, {k:12}: {dist[k]['s_per_iter']:.3f} s wall, {dist[k]['cpu_s_per_iter']:.3f} s process time, "
              f"peak {dist[k]['peak_MB']:.1f} MB ({dist[k]['measure']})")
    print(f"checkpointed / plain: memory {dist['memory_ratio']:.3f}×, time {dist['time_ratio']:.2f}× ({dist['time_ratio_clock']}; "
          f"wall {dist['wall_time_ratio']:.2f}×)")
    save_json(dict(benchmark='mtt', note=NOTE, size=args.size, settings=SIZES[args.size], experts=experts, distillation=dist,
                   load_avg=[load_start, os.getloadavg()[0]],
                   **provenance(device, cores=os.cpu_count(), threads=torch.get_num_threads(), command=' '.join(['python', *sys.argv]))),
              args.out)
    print(f'wrote {args.out}')

if __name__ == '__main__': main()
