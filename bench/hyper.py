"""Benchmark: a meta-step with the exact hypergradient vs a spline-predicted step (study 002), and accuracy at equal wall time.

Study 002 proposes to predict the trajectory of the KD meta-parameters λ = [β1, β2, T] with linear splines instead of
computing a hypergradient at every iteration, to save compute. This measures what that saves, in one process:

1. Cost of one iteration, for the synthetic set's student (logistic regression, full batch of 15 points, `runs`
   stacked restarts) and for the CIFAR student (`Cifar_Very_Tiny`, batch 128, `runs` stacked runs, random images —
   the cost does not depend on the values): the median wall time of
   - hyper: hypergradient through one unrolled SGD step (exact, `torch.func`, reverse mode) + meta-update + student step;
   - spline: evaluating the fitted line + student step (what the spline mode does in its predicted epochs);
   - plain: the student step alone (fixed λ).
   The ratio hyper/spline is what a predicted iteration saves; a spline run with n epochs per cycle does hyper
   iterations in 1/n of its epochs, so its expected saving over a whole run is 1/(1/n + (1 - 1/n)·spline/hyper).
2. Accuracy at equal wall time on the synthetic set (`kdnotes.hyper.train_student`, `iterations` each, epoch size
   10, n = 2): the spline run's last-iteration test accuracy against the hyper run's accuracy at the iteration it
   had reached after the spline run's wall time (its iterations take equal time, so that iteration is
   iterations × spline wall / hyper wall), and both at equal iterations.

    python bench/hyper.py                # about 2 minutes on a 2-core CPU
    python bench/hyper.py --size large --device cuda
"""
import argparse, os, sys, time

import torch
from torch import nn
from torch.func import replace_all_batch_norm_modules_, vmap

from kdnotes.core import get_device, provenance, save_json
from kdnotes.hyper import (fit_full_batch, fit_line, hypergrad, initial_lam, raw_params, sgd_unroll, synthetic_xor,
                           train_student)
from kdnotes.models import Stacked
from kdnotes.vid import cifar_very_tiny

SIZES = {'small': dict(runs=10, cifar_runs=4, repeats=15, iterations=1000),
         'large': dict(runs=10, cifar_runs=20, repeats=30, iterations=20000)}
LR, META_LR, N = 0.1, 10., 2
NOTE = ('both sides in one process with the same torch threads; load_avg (1-min load at start and end) shows what '
        'else the machine ran; costs are medians of repeated timings after one warm-up call')

def median_seconds(fn, repeats):
    "Median wall time of `fn()` over `repeats` calls after one warm-up call."
    fn(); times = []
    for _ in range(repeats):
        start = time.perf_counter(); fn()
        if torch.cuda.is_available(): torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times)//2]

def synthetic_problem(device):
    "The synthetic set of study 002, its teacher's logits, and the (train, val, test) tuples of the student."
    d = synthetic_xor(device=device)
    teacher = fit_full_batch(Stacked.from_seeds(lambda: nn.Linear(3, 2), [42], device), d['teacher']['teacher'], d['teacher']['y'])
    with torch.no_grad(): t = {s: teacher(v['teacher'], shared=True)[0] for s, v in d.items()}
    return ((d['train']['student'], d['train']['y'], t['train']), (d['val']['student'], d['val']['y']),
            (d['test']['student'], d['test']['y']))

def cifar_problem(device, bs=128):
    "Random CIFAR-sized batches (images, labels, teacher logits) and a validation batch."
    g = torch.Generator().manual_seed(0)
    train = (torch.randn(bs, 3, 32, 32, generator=g), torch.randint(0, 10, (bs,), generator=g), torch.randn(bs, 10, generator=g))
    val = (torch.randn(bs, 3, 32, 32, generator=g), torch.randint(0, 10, (bs,), generator=g))
    return tuple(v.to(device) for v in train), tuple(v.to(device) for v in val)

def step_costs(make, train, val, runs, repeats, device):
    "Median seconds of a hyper iteration, a spline iteration and a plain student step, for `runs` stacked students."
    model = Stacked.from_seeds(make, range(runs), device)
    params = {k: v.detach() for k, v in model.params.items()}
    raw = raw_params(initial_lam(runs, 0)).to(device)
    line = fit_line(torch.stack([raw, raw + 0.1]))
    step = vmap(lambda p, r: sgd_unroll(model.base, p, r, train, 1, LR))
    hyper = vmap(lambda p, r: hypergrad(model.base, p, r, train, val, 1, LR)[0])
    cost = dict(hyper=median_seconds(lambda: step(params, raw - META_LR*hyper(params, raw).clamp(-1, 1)), repeats),
                spline=median_seconds(lambda: step(params, line[0] + line[1]*3), repeats),
                plain=median_seconds(lambda: step(params, raw), repeats))
    cost['ratio_hyper_spline'] = cost['hyper']/cost['spline']
    cost['expected_run_saving_n2'] = 1/(1/N + (1 - 1/N)*cost['spline']/cost['hyper'])
    return cost

def equal_time(problem, runs, iterations, device):
    "Hyper and spline runs of `iterations` on the synthetic set: walls, accuracies at equal iterations and equal time."
    train, val, test = problem
    out = {}
    for mode in ('hyper', 'spline'):
        model = Stacked.from_seeds(lambda: nn.Linear(3, 2), range(runs), device)
        start = time.perf_counter()
        h = train_student(model, train, val, test, initial_lam(runs, 1), mode, iterations=iterations, epoch_size=10, n=N,
                          lr=LR, meta_lr=META_LR)
        out[mode] = dict(wall_s=time.perf_counter() - start, acc_curve_mean=h['test_acc'].mean(0))
    it_equal = int(iterations*out['spline']['wall_s']/out['hyper']['wall_s'])
    res = dict(iterations=iterations, runs=runs, hyper_wall_s=out['hyper']['wall_s'], spline_wall_s=out['spline']['wall_s'],
               wall_ratio=out['hyper']['wall_s']/out['spline']['wall_s'],
               acc_equal_iterations=dict(hyper=out['hyper']['acc_curve_mean'][-1].item(), spline=out['spline']['acc_curve_mean'][-1].item()),
               hyper_iteration_at_spline_wall=it_equal,
               acc_equal_time=dict(hyper=out['hyper']['acc_curve_mean'][it_equal].item(), spline=out['spline']['acc_curve_mean'][-1].item()))
    return res

def parse_args(argv=None):
    "The command-line options."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', default='small', choices=sorted(SIZES), help='small: ~2 min on a CPU; large: GPU-sized')
    p.add_argument('--device', default='auto')
    p.add_argument('--out', default='bench/results/hyper.json')
    return p.parse_args(argv)

def main(argv=None):
    args = parse_args(argv)
    device, size = get_device(args.device), SIZES[args.size]
    if device.type == 'cpu': torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    synthetic = synthetic_problem(device)
    costs = {'synthetic': step_costs(lambda: nn.Linear(3, 2), *synthetic[:2], size['runs'], size['repeats'], device),
             'cifar': step_costs(lambda: replace_all_batch_norm_modules_(cifar_very_tiny()), *cifar_problem(device),
                                 size['cifar_runs'], size['repeats'], device)}
    for name, c in costs.items():
        print(f"{name:9} per iteration: hyper {1e3*c['hyper']:.1f} ms, spline {1e3*c['spline']:.1f} ms, plain {1e3*c['plain']:.1f} ms;"
              f" hyper/spline {c['ratio_hyper_spline']:.2f}×, a whole spline run with n = {N}: {c['expected_run_saving_n2']:.2f}× faster")
    eq = equal_time(synthetic, size['runs'], size['iterations'], device)
    print(f"synthetic, {eq['iterations']} iterations, {eq['runs']} restarts: hyper {eq['hyper_wall_s']:.1f} s, spline "
          f"{eq['spline_wall_s']:.1f} s ({eq['wall_ratio']:.2f}×); mean test accuracy at equal iterations hyper "
          f"{eq['acc_equal_iterations']['hyper']:.3f}, spline {eq['acc_equal_iterations']['spline']:.3f}; at the spline's wall time "
          f"hyper (iteration {eq['hyper_iteration_at_spline_wall']}) {eq['acc_equal_time']['hyper']:.3f}, spline {eq['acc_equal_time']['spline']:.3f}")
    save_json(dict(benchmark='hyper', note=NOTE, settings=dict(size=args.size, **size, lr=LR, meta_lr=META_LR, n=N, epoch_size=10),
                   step_costs=costs, equal_time=eq, load_avg=[load_start, os.getloadavg()[0]],
                   **provenance(device, cores=os.cpu_count(), threads=torch.get_num_threads(),
                                command=' '.join(['python', *sys.argv]))), args.out)
    print(f'wrote {args.out}')

if __name__ == '__main__': main()
