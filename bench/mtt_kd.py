"""Benchmark: what study 000's KD term costs in trajectory matching — KD-MTT vs plain MTT, per iteration and per evaluation epoch.

(a) One distillation iteration (IPC `ipc`, `syn_steps` inner steps on the whole synthetic set, DSA, the plain
`create_graph` unroll of `kdnotes.mtt.unroll`), forward and backward, with the inner loss

- plain MTT: cross-entropy (`kdnotes.mtt.ce_inner_loss`);
- KD-MTT: `kdnotes.mtt.KDInnerLoss` (α 0.5, T 3), the frozen teacher called on every augmented synthetic minibatch,
  so every inner step adds a teacher forward pass and the reverse pass a teacher backward pass to the images.

(b) One evaluation epoch of `k` fresh students on the synthetic set (`kdnotes.mtt.sgd_epoch`, SGD momentum 0.9,
batch 256, DSA) with and without the KD term (the teacher's forward pass on each batch).

The two sides alternate in one process (plain, KD, plain, KD, ...) after one warm-up each, so load from other work on
the machine falls on both; the ratio is KD time / plain time (on a CPU of process time, steadier on a shared machine;
on a GPU of wall time after synchronising). The teacher is untrained: its weights do not change the cost.

    python bench/mtt_kd.py                                   # CPU size: MNIST mini set, the `cpu` preset's networks, ~1 min here
    KDNOTES_DATA=/path/to/data python bench/mtt_kd.py --size paper --device cuda   # CIFAR-10, ConvNetD3-128, ResNet-50 teacher
"""
import argparse, os, sys, time

import torch

from kdnotes.core import get_device, provenance, save_json
from kdnotes.data import epoch_batches, load_dataset
from kdnotes.models import CifarResNet, seeded
from kdnotes.mtt import (DSA, ConvNetD3, FlatNet, KDInnerLoss, Preprocess, ce_inner_loss, draw_plan, init_synthetic,
                         matching_loss, sgd_epoch, unroll)

SIZES = {  # data, student width, teacher, IPC, inner steps, timed iterations, evaluation networks, timed evaluation epochs
    'cpu': dict(dataset='mnist', source='mini', width=16, teacher='convnet', teacher_width=32, ipc=10, syn_steps=10,
                iters=4, eval_nets=3, eval_epochs=20),
    'paper': dict(dataset='cifar10-jpeg', source='full', width=128, teacher='resnet50', teacher_width=None, ipc=10,
                  syn_steps=30, iters=10, eval_nets=5, eval_epochs=50),
}
ALPHA, T = 0.5, 3.
NOTE = ('both sides alternate in one process after one warm-up each; ratio = KD / plain of process time on a CPU, '
        'wall time on a GPU; load_avg (1-min load at start and end) shows what else the machine ran')

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()

def make_teacher(cfg, channels, classes, size):
    "The teacher network of size `cfg` (untrained)."
    if cfg['teacher'] == 'resnet50': return CifarResNet('resnet50', classes, channels)
    return ConvNetD3(channels, classes, size, width=cfg['teacher_width'])

def setup(size, device):
    "Synthetic set, student, start/target parameters and the two inner losses."
    cfg = SIZES[size]
    train = load_dataset(cfg['dataset'], cfg['source'], device=device)['train']
    x = train.batch(torch.arange(min(5000, len(train)), device=device))[0]
    X, Y = Preprocess(x, zca=False)(x), train.y[:len(x)]
    channels, hw = X.shape[1], X.shape[-1]
    net = FlatNet(lambda: ConvNetD3(channels, 10, hw, width=cfg['width']))
    images, labels = init_synthetic(X, Y, 10, cfg['ipc'], torch.Generator().manual_seed(0))
    teacher = seeded(lambda: make_teacher(cfg, channels, 10, hw), 100).to(device)
    return cfg, net, images, labels, {'plain': ce_inner_loss, 'kd': KDInnerLoss(teacher, ALPHA, T)}

def clock(device):
    "The clock the ratio uses: process time on a CPU, wall time on a GPU."
    return time.perf_counter if device.type == 'cuda' else time.process_time

def bench_distill(cfg, net, images, labels, losses, device):
    "Seconds per distillation iteration of each inner loss, alternating sides."
    start, target = net.init([0, 1], device)
    images = images.clone().requires_grad_(); lr = torch.tensor(0.01, device=device, requires_grad=True)
    hw = images.shape[-2:]
    def iteration(loss, i):
        plan = draw_plan(len(images), cfg['syn_steps'], len(images), hw, DSA(), torch.Generator().manual_seed(i))
        matching_loss(unroll(net, start, images, labels, lr, plan, DSA(), loss), start, target).backward()
        images.grad = lr.grad = None
    times, wall, now = {k: [] for k in losses}, {k: [] for k in losses}, clock(device)
    for i in range(cfg['iters'] + 1):
        for k, loss in losses.items():
            t, w = now(), time.perf_counter(); iteration(loss, i); sync(device)
            if i: times[k].append(now() - t); wall[k].append(time.perf_counter() - w)    # iteration 0 is the warm-up
    return {k: dict(s_per_iter=sum(v)/len(v), wall_s_per_iter=sum(wall[k])/len(wall[k]), times=v) for k, v in times.items()}

def bench_eval(cfg, net, images, labels, losses, device):
    "Seconds per evaluation epoch of `eval_nets` students on the synthetic set, with each loss, alternating sides."
    seeds = list(range(cfg['eval_nets']))
    params = {k: net.init(seeds, device) for k in losses}
    order = {k: [torch.Generator().manual_seed(s) for s in seeds] for k in losses}
    aug = {k: [torch.Generator().manual_seed(s + 2**32) for s in seeds] for k in losses}
    times, now = {k: [] for k in losses}, clock(device)
    for e in range(cfg['eval_epochs'] + 1):
        for k, loss in losses.items():
            t = now()
            params[k], _ = sgd_epoch(net, params[k], images, labels, epoch_batches(len(images), 256, order[k]), 0.01, DSA(),
                                     aug[k], momentum=0.9, wd=5e-4, loss=loss)
            sync(device)
            if e: times[k].append(now() - t)
    return {k: dict(s_per_epoch=sum(v)/len(v)) for k, v in times.items()}

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', default='cpu', choices=sorted(SIZES))
    p.add_argument('--device', default='auto')
    p.add_argument('--out', default='bench/results/mtt_kd.json')
    return p.parse_args(argv)

def main(argv=None):
    args = parse_args(argv)
    device, load_start = get_device(args.device), os.getloadavg()[0]
    cfg, net, images, labels, losses = setup(args.size, device)
    dist = bench_distill(cfg, net, images, labels, losses, device)
    ev = bench_eval(cfg, net, images, labels, losses, device)
    ratio, eval_ratio = dist['kd']['s_per_iter']/dist['plain']['s_per_iter'], ev['kd']['s_per_epoch']/ev['plain']['s_per_epoch']
    what = 'process time' if device.type == 'cpu' else 'wall time'
    print(f"{args.size} size on {device}: student ConvNetD3-{cfg['width']}, teacher {cfg['teacher']}"
          f"{'' if cfg['teacher_width'] is None else '-' + str(cfg['teacher_width'])}, IPC {cfg['ipc']}, {cfg['syn_steps']} inner steps")
    print(f"distillation iteration ({what}): plain MTT {dist['plain']['s_per_iter']:.3f} s, KD-MTT {dist['kd']['s_per_iter']:.3f} s "
          f"-> KD / plain {ratio:.2f}×")
    print(f"evaluation epoch of {cfg['eval_nets']} students ({what}): CE {ev['plain']['s_per_epoch']:.4f} s, "
          f"with the KD term {ev['kd']['s_per_epoch']:.4f} s -> KD / CE {eval_ratio:.2f}×")
    save_json(dict(benchmark='mtt_kd', note=NOTE, size=args.size, settings=cfg, alpha=ALPHA, T=T, clock=what,
                   distillation=dist, evaluation=ev, ratio_distill=ratio, ratio_eval=eval_ratio,
                   load_avg=[load_start, os.getloadavg()[0]],
                   **provenance(device, cores=os.cpu_count(), threads=torch.get_num_threads(), command=' '.join(['python', *sys.argv]))),
              args.out)
    print(f'wrote {args.out}')

if __name__ == '__main__': main()
