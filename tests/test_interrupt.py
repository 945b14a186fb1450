"""Interruption: long runs SIGKILLed at random points and resumed give exactly the uninterrupted result (CPU),
and a killed run never leaves a folder or file that looks complete."""
import json, os, random, signal, subprocess, sys, time
from pathlib import Path
import torch
from conftest import ROOT

from kdnotes.core import test_same as assert_same   # imported under another name: pytest would collect a test_ function
from kdnotes.mtt import ConvNetD3, FlatNet, train_experts
from kdnotes.report import results_folders

EPOCHS, ITERATIONS = 6, 40   # expert epochs, then distillation iterations: the steps of the long run

# The long run at a tiny CPU size: two experts on 400 mini-MNIST images, then MTT distillation (IPC 1) saved every
# iteration. It prints `started` once its imports and data are ready, and writes its result atomically at the end.
DRIVER = f'''
import os, sys
from pathlib import Path
import torch
from kdnotes.data import load_dataset
from kdnotes.mtt import ConvNetD3, FlatNet, distill, train_experts

state, out = Path(sys.argv[1]), Path(sys.argv[2])
X, Y = load_dataset('mnist', 'mini')['train'].batch(torch.arange(400))
net = FlatNet(lambda: ConvNetD3(1, 10, 28, width=4))
print('started', flush=True)
traj = train_experts(net, X, Y, state/'experts', seeds=[1, 2], epochs={EPOCHS}, bs=50)
res = distill(net, traj, X, Y, classes=10, ipc=1, iterations={ITERATIONS}, syn_steps=4, expert_epochs=1, max_start_epoch=2,
              lr_img=100., seed=5, folder=state/'distill', save_every=1)
tmp = out.with_name(out.name + '.partial')
torch.save(dict(trajectories=traj, **{{k: res[k] for k in ('images', 'labels', 'syn_lr', 'losses', 'syn_lrs')}}), tmp)
os.replace(tmp, out)
'''

def cpu_env(base=None) -> dict:
    "The environment of a child process: one CPU thread, so that runs are reproducible and share the machine."
    return dict(base or os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')

def saved_steps(state:Path) -> int:
    "Steps the resumable state in `state` holds: finished expert epochs, then finished distillation iterations."
    if (state/'distill'/'distill.pt').exists(): return EPOCHS + torch.load(state/'distill'/'distill.pt')['epoch']   # Checkpoint's count of finished steps
    if (state/'experts'/'state.pt').exists(): return torch.load(state/'experts'/'state.pt')['epoch']
    return 0

def start_driver(driver, state, out, log):
    "Start the long run; return the process once it has printed `started` (its imports and data are loaded)."
    with open(log, 'a') as err:
        p = subprocess.Popen([sys.executable, str(driver), str(state), str(out)], cwd=ROOT, env=cpu_env(),
                             stdout=subprocess.PIPE, stderr=err, text=True)
    line = p.stdout.readline()
    assert line.strip() == 'started', f'the driver did not start: {Path(log).read_text()[-2000:]}'
    return p

def kill_and_resume(tmp_path, driver_text, steps, targets, rng) -> tuple[dict, dict, list]:
    "The driver run once, and run again SIGKILLed after each target step (None: a random delay) then finished: both results and the kills."
    driver = tmp_path/'driver.py'
    driver.write_text(driver_text)
    with open(tmp_path/'once.log', 'w') as err:       # the uninterrupted run goes on beside the killed ones
        once = subprocess.Popen([sys.executable, str(driver), str(tmp_path/'once'), str(tmp_path/'once.pt')], cwd=ROOT,
                                env=cpu_env(), stdout=subprocess.DEVNULL, stderr=err)
    state, out, log = tmp_path/'killed', tmp_path/'killed.pt', tmp_path/'killed.log'
    kills, before = [], 0
    for target in targets:
        p = start_driver(driver, state, out, log)
        if target is None: time.sleep(rng.uniform(0, 0.3))
        else:
            deadline = time.time() + 60
            while steps(state) < target and p.poll() is None and time.time() < deadline: time.sleep(0.05)
            time.sleep(rng.uniform(0, 0.05))
        assert p.poll() is None, f'the run ended before the kill aimed after step {target}: {log.read_text()[-2000:]}'
        p.send_signal(signal.SIGKILL); p.wait(); p.stdout.close()
        assert p.returncode == -signal.SIGKILL and not out.exists(), 'a killed run left a final output file'
        assert steps(state) >= before, f'the saved state went back from {before} to {steps(state)} steps'
        before = steps(state)
        kills.append(dict(target=target, saved=before))
    p = start_driver(driver, state, out, log)                     # the last restart runs to the end
    assert p.wait(timeout=120) == 0, log.read_text()[-2000:]
    p.stdout.close()
    assert not list(state.rglob('*.partial')), 'a half-written state file was left behind'
    assert once.wait(timeout=120) == 0, (tmp_path/'once.log').read_text()[-2000:]
    return torch.load(tmp_path/'once.pt'), torch.load(out), kills

def test_killed_and_resumed_mtt_equals_uninterrupted(tmp_path):
    "Experts then distillation, SIGKILLed four times at seeded random points and restarted: the same tensors as one run."
    # Kill points (seeded): one by a random delay just after the start, one after a random expert epoch, two after
    # random distillation iterations; each kill comes a random fraction of a step later, so it can hit a save.
    rng = random.Random(10)
    targets = [None, rng.randint(1, EPOCHS - 1), *sorted(EPOCHS + i for i in rng.sample(range(1, ITERATIONS - 15), 2))]
    once, resumed, kills = kill_and_resume(tmp_path, DRIVER, saved_steps, targets, rng)
    in_distillation = [k['saved'] > EPOCHS for k in kills]
    assert len(kills) >= 3 and 0 < sum(in_distillation) < len(kills), kills   # both loops were hit
    assert saved_steps(tmp_path/'killed') == EPOCHS + ITERATIONS
    assert_same(once, resumed)
    assert len(once['losses']) == ITERATIONS

# ------------------------------------------------------------------ `kdnotes run` killed mid-way
def descendants(pid:int) -> list[int]:
    "Process ids of the children of `pid`, their children, and so on."
    parents = {}
    for d in Path('/proc').iterdir():
        try: parents[int(d.name)] = int((d/'stat').read_text().rsplit(')', 1)[1].split()[1])
        except (ValueError, OSError): pass
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        kids = [c for c, q in parents.items() if q == parent]
        found += kids; todo += kids
    return found

def alive(pid:int) -> bool:
    "Whether `pid` is running (not gone, not a zombie)."
    try: return (Path('/proc')/str(pid)/'stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError: return False

def kill_run(cmd, cwd, env, log, ready, timeout=60, delay=0.):
    "Start `cmd` (a `kdnotes run`), SIGKILL it `delay` s after `ready(pid)` holds, and check that its notebook kernel exits too."
    with open(log, 'w') as err:
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    kernels, deadline = [], time.time() + timeout
    try:
        while not ready(p.pid) and p.poll() is None and time.time() < deadline: time.sleep(0.05)
        time.sleep(delay)
        assert p.poll() is None, f'the run was over before the kill: {Path(log).read_text()[-2000:]}'
        kernels = descendants(p.pid)
        os.killpg(p.pid, signal.SIGKILL); p.wait()
        deadline = time.time() + 10           # the kernel, in a session of its own, notices and exits by itself
        while any(map(alive, kernels)) and time.time() < deadline: time.sleep(0.1)
        assert not any(map(alive, kernels)), 'the notebook kernel outlived the killed run'
    finally:
        for k in kernels:
            if alive(k): os.kill(k, signal.SIGKILL)

def test_killed_kdnotes_run_leaves_no_results_folder(tmp_path, no_data_env):
    "`kdnotes run` SIGKILLed mid-way leaves no results folder; the next run clears its leftovers and completes."
    dest = tmp_path/'results'/'run'
    cmd = [str(Path(sys.executable).with_name('kdnotes')), 'run', '004_base', '--preset', 'smoke', '--device', 'cpu',
           '--out', str(dest)]
    # work has started: the temporary folder and the notebook's kernel exist
    started = lambda pid: descendants(pid) and list(dest.parent.glob('.004_base-smoke.*'))
    kill_run(cmd, tmp_path, cpu_env(no_data_env), tmp_path/'run.log', started, delay=random.Random(5).uniform(1, 3))
    assert not dest.exists()
    assert list(dest.parent.glob('.004_base-smoke.*')), 'expected the temporary folder of the killed run'
    assert not list(dest.parent.rglob('provenance.json')), 'a killed run left a complete-looking folder'
    r = subprocess.run(cmd, cwd=tmp_path, env=cpu_env(no_data_env), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in dest.parent.iterdir()) == ['run'], 'the next run left the killed one\'s folder behind'
    assert (dest/'provenance.json').is_file()

def test_killed_vid_run_resumes_to_the_uninterrupted_result(tmp_path, no_data_env):
    "`kdnotes run 003_vid` (smoke, which resumes like paper) SIGKILLed mid-way and run again: the uninterrupted metrics."
    run = lambda name: [str(Path(sys.executable).with_name('kdnotes')), 'run', '003_vid', '--preset', 'smoke', '--device', 'cpu',
                        '--out', str(tmp_path/name)]
    env = lambda name: cpu_env(no_data_env | {'KDNOTES_CACHE': str(tmp_path/f'cache_{name}')})
    once = subprocess.Popen(run('once'), cwd=tmp_path, env=env('once'), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path/'cache_killed'/'003_vid'
    kill_run(run('killed'), tmp_path, env('killed'), tmp_path/'killed.log', lambda pid: list(state.glob('*/study-vid_pairwise/state.pt')),
             timeout=120)
    assert not (tmp_path/'killed').exists()
    r = subprocess.run(run('killed'), cwd=tmp_path, env=env('killed'), capture_output=True, text=True)
    assert r.returncode == 0 and once.wait() == 0, r.stderr[-3000:]
    measured = lambda name: {k: v for k, v in json.loads((tmp_path/name/'metrics.json').read_text()).items() if k != 'seconds'}
    assert measured('killed') == measured('once')
    resumed = json.loads((tmp_path/'killed'/'provenance.json').read_text())['resumed']
    every = {p.parent.name for p in (tmp_path/'cache_once'/'003_vid').glob('*/*/state.pt')}      # every run's state, kept by the run not killed
    assert {'study-teacher', 'study-alone', 'study-vid_pairwise'} <= set(resumed) < every, (resumed, every)   # some read back, not all
    assert json.loads((tmp_path/'once'/'provenance.json').read_text())['resumed'] == []

# ------------------------------------------------------------------ kills inside a write
# The window between a file's truncation and its last byte is microseconds wide: random kills rarely hit it, so
# these tests put the kill there on purpose, with the kernel's file-size limit (SIGXFSZ, default action restored:
# the process dies at the write) or with a SIGKILL the process sends itself inside the library's own code.
DIE_AT_FIRST_WRITE = '''
import resource, signal, sys, torch
from kdnotes.mtt import ConvNetD3, FlatNet, train_experts
X, Y = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.arange(20) % 10
net = FlatNet(lambda: ConvNetD3(1, 10, 28, width=2))
signal.signal(signal.SIGXFSZ, signal.SIG_DFL); resource.setrlimit(resource.RLIMIT_FSIZE, (32, 32))
print('armed', flush=True)                  # from here on, the first write of more than 32 bytes kills the process
train_experts(net, X, Y, sys.argv[1], seeds=[1], epochs=2, bs=10)
'''

def test_kill_during_a_settings_write_leaves_the_folder_resumable(tmp_path):
    "A run killed while it rewrites its settings file (experts.json) on resuming: the next call resumes."
    script, folder = tmp_path/'die.py', tmp_path/'experts'
    script.write_text(DIE_AT_FIRST_WRITE)
    X, Y = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.arange(20) % 10
    net = FlatNet(lambda: ConvNetD3(1, 10, 28, width=2))
    train_experts(net, X, Y, folder, seeds=[1], epochs=1, bs=10)
    r = subprocess.run([sys.executable, str(script), str(folder)], cwd=ROOT, capture_output=True, text=True,
                       env=cpu_env() | dict(PYTHONDONTWRITEBYTECODE='1'))
    assert r.returncode == -signal.SIGXFSZ and r.stdout.strip() == 'armed', r.stderr[-1500:]   # killed inside train_experts
    assert train_experts(net, X, Y, folder, seeds=[1], epochs=2, bs=10).shape == (1, 3, net.numel)  # it resumes

def test_folder_left_by_a_killed_copy_is_not_reported(tmp_path):
    "SIGKILL inside `atomic_dir` (as in `kdnotes run`'s last copy): the hidden temporary folder is never a result."
    results = tmp_path/'results'
    (results/'004_base'/'smoke').mkdir(parents=True)
    (results/'004_base'/'smoke'/'metrics.json').write_text('{}')
    code = ('import os, signal; from kdnotes.core import atomic_dir\n'
            f'with atomic_dir({str(results/"004_base"/"smoke")!r}) as tmp:\n'
            "    (tmp/'metrics.json').write_text('{}'); os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=cpu_env()).returncode == -signal.SIGKILL
    assert [p.name for p in (results/'004_base').iterdir() if p.name.startswith('.smoke.')], 'expected the left-over folder'
    assert results_folders(results) == [results/'004_base'/'smoke']

# ------------------------------------------------------------------ training loops: a stacked sweep and the VAE
SWEEP_EPOCHS, SWEEP_RUNS, VAE_EPOCHS = 4, 20, 10

# Study 004's two protocols over 20 seeds at a tiny CPU size: 20 MLPs trained as one stacked ensemble, then one MLP
# over 20 continued attempts, each student learning from its own (untrained) teacher through a noisy φ that draws
# from a generator of its own. Resumable in the state folder; the histories and the final tensors are the result.
SWEEP_DRIVER = f'''
import sys, torch
from pathlib import Path
from kdnotes.core import save_torch
from kdnotes.data import load_dataset
from kdnotes.losses import study004_loss
from kdnotes.models import MLP, Stacked
from kdnotes.train import protocol_runs

state, out = Path(sys.argv[1]), Path(sys.argv[2])
d = load_dataset('fashion', 'mini')
train, test = d['train'].subset(torch.arange(600)), d['test'].subset(torch.arange(200))
seeds = list(range({SWEEP_RUNS}))
teachers = Stacked.from_seeds(lambda: MLP([784, 32, 10]), [s + 100 for s in seeds])
g = torch.Generator().manual_seed(7)
noisy = lambda x: (x + 0.1*torch.randn(x.shape, generator=g)).clamp(0, 1)
print('started', flush=True)
h = protocol_runs(lambda: MLP([784, 16, 10]), train, test, seeds, {SWEEP_EPOCHS}, 50, loss_fn=study004_loss, teachers=teachers,
                  phi=noisy, random_phi=True, folder=state, rngs=[g])
final = {{p: torch.load(state/p/'state.pt')['tensors'] for p in ('independent', 'study/attempt_{SWEEP_RUNS - 1:02d}')}}
save_torch(dict(histories=h, final=final, noise=g.get_state()), out)
'''

VAE_DRIVER = f'''
import sys, torch
from pathlib import Path
from kdnotes.core import save_torch
from kdnotes.data import load_dataset
from kdnotes.domain import TwoDecoderVAE, fit_vae, pair_by_class
from kdnotes.models import seeded

state, out = Path(sys.argv[1]), Path(sys.argv[2])
fashion, mnist = (load_dataset(n, 'mini')['train'] for n in ('fashion', 'mnist'))
fashion = fashion.subset(torch.arange(1000))
pairs = pair_by_class(fashion.y, mnist.y, torch.Generator().manual_seed(0))
vae = seeded(lambda: TwoDecoderVAE(latent=8, hidden=64), 0)
print('started', flush=True)
losses = fit_vae(vae, fashion, mnist, pairs, {VAE_EPOCHS}, bs=50, seed=3, folder=state)
save_torch(dict(losses=losses, params=vae.state_dict()), out)
'''

def epoch_of(path:Path) -> int:
    "Finished epochs in a training state file (our own: read without the slower safe unpickler), 0 if there is none."
    return torch.load(path, mmap=True, weights_only=False)['epoch'] if path.exists() else 0

def sweep_steps(state:Path) -> int:
    "Finished epochs of the sweep: the independent runs', then the attempts' (attempt a starts when a - 1 is done)."
    attempts = sorted((state/'study').glob('attempt_*'))
    if not attempts: return epoch_of(state/'independent'/'state.pt')
    return SWEEP_EPOCHS*len(attempts) + epoch_of(attempts[-1]/'state.pt')

def test_killed_and_resumed_stacked_sweep_equals_uninterrupted(tmp_path):
    "A 20-seed sweep under both protocols (20 stacked runs, then 20 continued attempts), SIGKILLed four times: the same as one run."
    rng = random.Random(11)
    total = SWEEP_EPOCHS*(1 + SWEEP_RUNS)
    targets = [None, rng.randint(1, SWEEP_EPOCHS - 1), *sorted(rng.sample(range(SWEEP_EPOCHS + 1, total - 20), 2))]
    once, resumed, kills = kill_and_resume(tmp_path, SWEEP_DRIVER, sweep_steps, targets, rng)
    assert 0 < sum(k['saved'] >= SWEEP_EPOCHS for k in kills) < len(kills), kills   # both protocols were hit
    assert sweep_steps(tmp_path/'killed') == total
    assert_same(once, resumed)
    assert once['histories']['independent']['test_acc'].shape == (SWEEP_RUNS, SWEEP_EPOCHS + 1)
    assert once['histories']['study']['test_acc'].shape == (SWEEP_RUNS, SWEEP_EPOCHS + 1)

def test_killed_and_resumed_vae_equals_uninterrupted(tmp_path):
    "`fit_vae` SIGKILLed four times at random points and restarted: the same losses and parameters as one run."
    rng = random.Random(12)
    targets = [None, *sorted(rng.sample(range(1, VAE_EPOCHS - 2), 3))]
    once, resumed, kills = kill_and_resume(tmp_path, VAE_DRIVER, lambda s: epoch_of(s/'state.pt'), targets, rng)
    assert epoch_of(tmp_path/'killed'/'state.pt') == VAE_EPOCHS and len(once['losses']) == VAE_EPOCHS
    assert sum(k['saved'] > 0 for k in kills) >= 3, kills
    assert_same(once, resumed)

DIE_IN_STATE_WRITE = '''
import resource, signal, sys, torch
from kdnotes.data import ImageSet
from kdnotes.models import MLP, Stacked
from kdnotes.train import fit
g = torch.Generator().manual_seed(0)
data = ImageSet(torch.randint(0, 256, (60, 1, 28, 28), dtype=torch.uint8, generator=g), torch.arange(60) % 10, list(range(10)))
model = Stacked.from_seeds(lambda: MLP([784, 8, 10]), [1, 2])
signal.signal(signal.SIGXFSZ, signal.SIG_DFL); resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
print('armed', flush=True)                  # from here on, the first write of more than 4 KB kills the process
fit(model, data, 3, 20, [1, 2], folder=sys.argv[1])
'''

def test_kill_during_a_state_write_leaves_the_run_resumable(tmp_path):
    "`fit` killed while it writes its state after epoch 2: epoch 1's state is whole, and the restart ends as one run."
    from kdnotes.data import ImageSet
    from kdnotes.models import MLP, Stacked
    from kdnotes.train import fit
    script, folder = tmp_path/'die.py', tmp_path/'run'
    script.write_text(DIE_IN_STATE_WRITE)
    g = torch.Generator().manual_seed(0)
    data = ImageSet(torch.randint(0, 256, (60, 1, 28, 28), dtype=torch.uint8, generator=g), torch.arange(60) % 10, list(range(10)))
    run = lambda folder, epochs: (lambda m: (fit(m, data, epochs, 20, [1, 2], folder=folder), m.params))(Stacked.from_seeds(lambda: MLP([784, 8, 10]), [1, 2]))
    run(folder, 1)
    r = subprocess.run([sys.executable, str(script), str(folder)], cwd=ROOT, capture_output=True, text=True,
                       env=cpu_env() | dict(PYTHONDONTWRITEBYTECODE='1'))
    assert r.returncode == -signal.SIGXFSZ and r.stdout.strip() == 'armed', r.stderr[-1500:]   # killed inside fit
    assert epoch_of(folder/'state.pt') == 1 and (folder/'.state.pt.partial').exists()
    assert_same(run(folder, 3), run(None, 3))
