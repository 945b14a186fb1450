"""Whole-experiment wall times, gathered from the committed results folders' provenance (no timing of its own).

Each results folder records the run's wall time, device, machine and commit; this lists them in one file so the
cost of reproducing each study on the machine that ran it is in `bench/results/` beside the ratio benchmarks.

    python bench/wall_times.py
"""
import argparse
from pathlib import Path
from kdnotes.core import load_json, save_json

KEYS = ('wall_time_s', 'run_wall_time_s', 'device', 'device_name', 'git_commit', 'torch_threads', 'command')

def wall_times(root='results') -> dict:
    "`experiment/preset` -> the timing fields of its provenance, for every results folder under `root`."
    return {f'{p.parent.parent.name}/{p.parent.name}': {k: v for k, v in load_json(p).items() if k in KEYS}
            for p in sorted(Path(root).glob('*/*/provenance.json'))}

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--results', default='results'); p.add_argument('--out', default='bench/results/wall_times.json')
    args = p.parse_args(argv)
    times = wall_times(args.results)
    if not times: p.error(f'{args.results}: no results folder with a provenance.json')
    for name, t in times.items(): print(f"{name:28} {t.get('wall_time_s', float('nan')):8.0f} s  on {t.get('device_name', t.get('device'))}")
    save_json(times, args.out); print(f'wrote {args.out}')

if __name__ == '__main__': main()
