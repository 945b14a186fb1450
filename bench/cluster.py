"""Benchmark: `--executor ray` against the local executor, wall clock, on a local Ray cluster of two one-CPU nodes.

(a) `kdnotes reproduce --preset smoke`: every experiment at `smoke`, local (one after another in this machine's
    process) against Ray (the experiments side by side, their units as tasks);
(b) `000_kd_mtt` at `cpu` (teacher, experts, then the seven distillations of plain MTT and the T × α grid, and the
    evaluations of each and of the random real start): `kdnotes run` local against Ray.

The cluster is two Ray nodes of one CPU each, each with a cache folder of its own, so that the units' results travel
through Ray as they would between machines; every process has one torch thread. The ratio is local wall time / Ray
wall time (the target on 2 cores is >= 1.6 for the grid). Ray's overhead per unit is the task's wall time minus the
unit's own training (starting the notebook's kernel, imports, data, reading earlier stages back, packing its
result); the workers' idle time per task counts stage barriers (a stage waits for its slowest unit), scheduling and
moving tars. Each side runs on a fresh cache (the `cpu` preset keeps resumable state: a second run would only read
it back). The machine is shared: the 1-minute load average is recorded at the start and end of each side; above
the number of cores, other work was running and both sides slowed.

    KDNOTES_DATA=/path/to/data python bench/cluster.py            # both; ~50 min here (MNIST for the cpu preset)
    python bench/cluster.py --only smoke
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

from fastcore.xtras import modified_env
from kdnotes.cli import experiments
from kdnotes.cluster import Job, run_on_ray
from kdnotes.core import provenance, save_json
from kdnotes.presets import PRESETS

WALL_TIMES = {'timings', 'seconds', 'group_seconds', 's_per_meta_step'}    # keys of metrics.json that hold wall times

def load() -> float: return round(os.getloadavg()[0], 2)

def measured(path:Path):
    "A metrics.json without the wall times some experiments record in it."
    def drop(o): return {k: drop(v) for k, v in o.items() if k not in WALL_TIMES} if isinstance(o, dict) else o
    return drop(json.loads(path.read_text()))

def local(argv:list, cwd:Path, cache:Path) -> dict:
    "Run `kdnotes *argv` with the local executor in `cwd` on a fresh cache: its wall time and the load around it."
    env = os.environ | {'KDNOTES_CACHE': str(cache), 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
    start, t0 = load(), time.time()
    r = subprocess.run([str(Path(sys.executable).with_name('kdnotes')), *argv], cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode: sys.exit(f'local run failed: {r.stderr[-2000:]}')
    return dict(wall_s=round(time.time() - t0, 1), load_avg=[start, load()])

def on_ray(jobs:list, root:Path) -> dict:
    "Run `jobs` on a fresh two-node cluster (a cache each; the driver's under `root`): wall time, load, and each task's record."
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0))
    for i in range(2): cluster.add_node(num_cpus=1, env_vars={'KDNOTES_CACHE': str(root/f'node{i}'), 'OMP_NUM_THREADS': '1'})
    cluster.wait_for_nodes()
    try:
        with modified_env(KDNOTES_CACHE=str(root/'driver')):
            start, t0 = load(), time.time()
            outcomes = run_on_ray(jobs, cluster.address, progress=False)
            wall = round(time.time() - t0, 1)
    finally: cluster.shutdown()
    failed = {e: str(o.error) for e, o in outcomes.items() if o.error}
    if failed: sys.exit(f'Ray run failed: {failed}')
    tasks = [dict(experiment=e, **t) for e, o in outcomes.items() for t in o.tasks]
    return dict(wall_s=wall, load_avg=[start, load()], tasks=tasks)

def overhead(tasks:list, wall:float, workers:int=2) -> dict:
    "Where Ray's wall time went: each unit's task beyond its training, and the workers' idle time (stage barriers, scheduling, transfers)."
    units = [t for t in tasks if 'unit_s' in t]
    inside = [t['seconds'] - t['unit_s'] for t in units]
    busy = sum(t['seconds'] for t in tasks)
    return dict(units=len(units), unit_training_s=round(sum(t['unit_s'] for t in units), 1), task_s=round(busy, 1),
                in_task_overhead_s=dict(mean=round(statistics.mean(inside), 1), median=round(statistics.median(inside), 1)),
                gather_task_s=round(statistics.mean([t['seconds'] for t in tasks if t['unit'] == 'gather'] or [0]), 1),
                workers_busy_share=round(busy/(workers*wall), 2), idle_worker_s_per_task=round((workers*wall - busy)/len(tasks), 1))

def compact(tasks:list) -> list:
    "Each task's experiment, unit, node, seconds in the task, of the unit's own training, and from submission to its end."
    return [{k: t.get(k) for k in ('experiment', 'unit', 'node', 'seconds', 'unit_s', 'wall_s')} for t in tasks]

def smoke(tmp:Path) -> dict:
    todo = [e for e in experiments() if 'smoke' in PRESETS[e]]
    (tmp/'local').mkdir(parents=True)
    loc = local(['reproduce', '--preset', 'smoke', '--device', 'cpu'], tmp/'local', tmp/'local-cache')
    ray = on_ray([Job(e, 'smoke', 'cpu', tmp/'ray'/'results'/e/'smoke') for e in todo], tmp/'ray')
    same = {e: measured(tmp/'local'/'results'/e/'smoke'/'metrics.json') == measured(tmp/'ray'/'results'/e/'smoke'/'metrics.json') for e in todo}
    return dict(experiments=todo, local=loc, ray={k: v for k, v in ray.items() if k != 'tasks'}, ratio=round(loc['wall_s']/ray['wall_s'], 2),
                overhead=overhead(ray['tasks'], ray['wall_s']), identical_but_wall_times=same, tasks=compact(ray['tasks']))

def grid(tmp:Path) -> dict:
    (tmp/'local').mkdir(parents=True)
    loc = local(['run', '000_kd_mtt', '--preset', 'cpu', '--device', 'cpu', '--out', str(tmp/'local'/'out')], tmp/'local', tmp/'local-cache')
    ray = on_ray([Job('000_kd_mtt', 'cpu', 'cpu', tmp/'ray'/'out')], tmp/'ray')
    return dict(local=loc, ray={k: v for k, v in ray.items() if k != 'tasks'}, ratio=round(loc['wall_s']/ray['wall_s'], 2),
                overhead=overhead(ray['tasks'], ray['wall_s']),
                identical_but_wall_times=measured(tmp/'local'/'out'/'metrics.json') == measured(tmp/'ray'/'out'/'metrics.json'),
                tasks=compact(ray['tasks']))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--only', choices=['smoke', 'grid']); p.add_argument('--out', default='bench/results/cluster.json')
    args = p.parse_args(argv)
    res = dict(benchmark='cluster', note=__doc__.split('\n\n')[1].replace('\n', ' '), cores=os.cpu_count())
    if args.only and Path(args.out).exists(): res = json.loads(Path(args.out).read_text()) | res    # the other part, kept
    with tempfile.TemporaryDirectory(prefix='kdnotes-bench-cluster-') as tmp:
        if args.only != 'grid': res['reproduce_smoke'] = smoke(Path(tmp)/'smoke'); print('smoke:', json.dumps(res['reproduce_smoke'], default=str)[:400])
        if args.only != 'smoke': res['kd_mtt_cpu'] = grid(Path(tmp)/'grid'); print('000_kd_mtt cpu:', json.dumps(res['kd_mtt_cpu'], default=str)[:400])
    res['load_avg_note'] = 'load_avg: the 1-minute load average at the start and the end of each side'
    loads = [x for part in ('reproduce_smoke', 'kd_mtt_cpu') if part in res for side in ('local', 'ray') for x in res[part][side]['load_avg']]
    res['busy'] = max(loads) > os.cpu_count()
    if res['busy']: res['busy_note'] = f'the 1-minute load average reached {max(loads)} on {os.cpu_count()} cores: other work shared the machine'
    save_json(res | provenance('cpu'), args.out); print(f'wrote {args.out}')

if __name__ == '__main__': main()
