"""Benchmark: one training step of a student with all-to-all VID (batched) against the straightforward ways.

One optimiser step of the student (batch `--bs`, the frozen teacher's forward included) on

- `ce`: cross-entropy alone;
- `pairwise`: VID on the S pairs of equal relative depth (`kdnotes.vid.AllToAll(lam='pairwise')`);
- `all_batched`: VID on all T×S pairs, regressors batched (`AllToAll`, uniform λ);
- `all_looped`: the same module computed pair by pair (`AllToAll.forward_looped`, 1×1 convolutions per pair);
- `all_separate`: T×S separate pair modules, each an `nn.Sequential` of three 1×1 `nn.Conv2d` with its own
  variance, called one after another — how per-pair VID code is usually written.

and the alignment term alone (forward and backward on fixed features) for the four VID variants. Calls are
interleaved (one of each variant per round) so that changes in machine load hit all alike; medians over
`--reps` rounds. Prints milliseconds per step and the ratios, and writes them to `--out` as JSON.

    python bench/vid.py                    # the study's CNNs (Cifar_Tiny -> Cifar_Very_Tiny), CPU-sized
    python bench/vid.py --size resnet      # ResNet-18 teacher (5 features) -> Cifar_Very_Tiny, for a GPU
"""
import argparse, os, sys, time

import torch
import torch.nn.functional as F
from torch import nn

from kdnotes.core import get_device, provenance, save_json
from kdnotes.models import CifarResNet
from kdnotes.vid import AllToAll, as_map, cifar_tiny, cifar_very_tiny, pool_to, softplus_inv, vid_nll, vid_step

NOTE = ('one student, one process, interleaved calls, medians; every VID step includes the frozen teacher forward; '
        'load_avg (1-min load at start and end) shows what else the machine ran')

class PairVID(nn.Module):
    "One (teacher layer, student layer) VID term as a module of its own: 1×1 conv regressor and per-channel variance."
    def __init__(self, c_s, c_t, hw, init_var=5., eps=1e-5):
        super().__init__()
        self.mu = nn.Sequential(nn.Conv2d(c_s, c_t, 1, bias=False), nn.ReLU(), nn.Conv2d(c_t, c_t, 1, bias=False), nn.ReLU(),
                                nn.Conv2d(c_t, c_t, 1, bias=False))
        self.a, self.hw, self.eps = nn.Parameter(torch.full((c_t,), softplus_inv(init_var - eps))), hw, eps

    def forward(self, t, s):
        return vid_nll(self.mu(pool_to(as_map(s), self.hw)), pool_to(as_map(t), self.hw), F.softplus(self.a) + self.eps)

class SeparatePairs(nn.Module):
    "All T×S pairs as separate `PairVID` modules, uniform λ = 1/T; same signature as `AllToAll`."
    def __init__(self, t_shapes, s_shapes):
        super().__init__()
        ts, ss = [tuple(s) + (1, 1)*(len(s) == 1) for s in t_shapes], [tuple(s) + (1, 1)*(len(s) == 1) for s in s_shapes]
        self.T = len(ts)
        self.pairs = nn.ModuleDict({f'{i}_{j}': PairVID(s[0], t[0], tuple(min(a, b) for a, b in zip(t[1:], s[1:])))
                                    for i, t in enumerate(ts) for j, s in enumerate(ss)})

    def forward(self, t_feats, s_feats):
        return sum(m(t_feats[int(k.split('_')[0])], s_feats[int(k.split('_')[1])]) for k, m in self.pairs.items())/self.T, None

def make_teacher(size):
    "The teacher of `size`: the study's Cifar_Tiny, or ResNet-18 with a CIFAR stem."
    return cifar_tiny() if size == 'small' else CifarResNet('resnet18')

def feature_shapes(model, device):
    "Shapes of `model`'s features on 32×32 images."
    with torch.no_grad(): return [tuple(f.shape[1:]) for f in model(torch.zeros(2, 3, 32, 32, device=device), features=True)[1]]

def variants(teacher, device):
    "The alignment of each VID variant (None for plain CE) and the function `vid_step` calls."
    ts, ss = feature_shapes(teacher, device), cifar_very_tiny().feature_shapes()
    a2a = AllToAll(ts, ss).to(device)
    return {'ce': (None, None), 'pairwise': (m := AllToAll(ts, ss, 'pairwise').to(device), m), 'all_batched': (a2a, a2a),
            'all_looped': (a2a, a2a.forward_looped), 'all_separate': (m2 := SeparatePairs(ts, ss).to(device), m2)}

def step_fn(name, teacher, module, fn, bs, device):
    "A function doing one `vid_step` of a fresh student on a fixed batch."
    s = cifar_very_tiny().to(device)
    opt = torch.optim.Adam(list(s.parameters()) + (list(module.parameters()) if module is not None else []), lr=1e-3)
    x, y = torch.rand(bs, 3, 32, 32, device=device), torch.randint(0, 10, (bs,), device=device)
    kw = {} if module is None else dict(teacher=teacher, align=fn, beta=0.5)
    return lambda: vid_step(s, opt, x, y, **kw)

def term_fn(teacher, fn, bs, device):
    "A function computing an alignment term and its gradient alone, on fixed features of one batch."
    x = torch.rand(bs, 3, 32, 32, device=device)
    with torch.no_grad(): tf = teacher(x, features=True)[1]
    sf = [f.detach().requires_grad_() for f in cifar_very_tiny().to(device)(x, features=True)[1]]
    return lambda: fn(tf, sf)[0].backward()

def timings(fns, reps, device):
    "Median seconds per call of each function; one call of each per round, two warm-up rounds."
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    times = {k: [] for k in fns}
    for _ in range(reps + 2):
        for k, f in fns.items():
            sync(); t0 = time.perf_counter(); f(); sync(); times[k].append(time.perf_counter() - t0)
    return {k: sorted(v[2:])[reps//2] for k, v in times.items()}

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', default='small', choices=['small', 'resnet'], help="teacher: the study's CNN or ResNet-18")
    p.add_argument('--bs', type=int, default=128)
    p.add_argument('--reps', type=int, default=20)
    p.add_argument('--device', default='auto')
    p.add_argument('--out', default='bench/results/vid.json')
    return p.parse_args(argv)

def main(argv=None):
    args = parse_args(argv)
    device = torch.device(get_device(args.device))
    torch.manual_seed(0)
    teacher = make_teacher(args.size).to(device).eval()
    for p in teacher.parameters(): p.requires_grad_(False)
    load_start = os.getloadavg()[0]
    vs = variants(teacher, device)
    fns = {f'step_{k}': step_fn(k, teacher, m, f, args.bs, device) for k, (m, f) in vs.items()}
    fns |= {f'term_{k}': term_fn(teacher, f, args.bs, device) for k, (m, f) in vs.items() if m is not None}
    t = timings(fns, args.reps, device)
    ratios = {'step_all_batched / step_ce': t['step_all_batched']/t['step_ce'],
              'step_pairwise / step_ce': t['step_pairwise']/t['step_ce'],
              'step_all_looped / step_all_batched': t['step_all_looped']/t['step_all_batched'],
              'step_all_separate / step_all_batched': t['step_all_separate']/t['step_all_batched'],
              'step_all_batched / step_pairwise': t['step_all_batched']/t['step_pairwise'],
              'term_all_looped / term_all_batched': t['term_all_looped']/t['term_all_batched'],
              'term_all_separate / term_all_batched': t['term_all_separate']/t['term_all_batched'],
              'term_all_batched / term_pairwise': t['term_all_batched']/t['term_pairwise']}
    for k, v in t.items(): print(f'{k:20} {v*1e3:9.1f} ms')
    for k, v in ratios.items(): print(f'{k:40} {v:6.2f}x')
    n_pairs = {k: len(m.pairs) for k, (m, _) in vs.items() if m is not None}
    save_json(dict(benchmark='vid', note=NOTE, settings=dict(size=args.size, bs=args.bs, reps=args.reps, pairs=n_pairs),
                   ms={k: v*1e3 for k, v in t.items()}, ratios=ratios, load_avg=[load_start, os.getloadavg()[0]],
                   **provenance(device, cores=os.cpu_count(), threads=torch.get_num_threads(), command=' '.join(['python', *sys.argv]))),
              args.out)
    print(f'wrote {args.out}')

if __name__ == '__main__': main()
