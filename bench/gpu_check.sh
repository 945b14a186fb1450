#!/usr/bin/env bash
# Everything in kdnotes that needs a GPU, in one command of under 8 minutes on one GPU:
#   1. every experiment's `paper_smoke` preset on CUDA (`kdnotes run E --preset paper_smoke --device cuda --out ...`),
#      into bench/results/gpu/runs/, never into the committed results/;
#   2. bench/ensemble.py, bench/stacked.py and bench/mtt.py --size paper on CUDA;
#   3. 004_base's smoke preset run twice on CUDA, the two metrics compared (determinism);
# writing every log, result and a summary (summary.json: each step's command, exit status and seconds) under
# bench/results/gpu/ (or --out).
#
#   bench/gpu_check.sh --dry-run        # lists the commands and checks that every entry point exists (CPU, seconds; CI)
#   bench/gpu_check.sh --prepare        # here, before a device run: data into .device_data/, wheels into .whl/
#   bench/gpu_check.sh --tar FILE.tgz   # on the GPU machine: run everything, then pack the results folder into FILE
#
# Data. The experiments' paper_smoke and smoke presets use the mini sets shipped in the package; only the benches read
# real data: bench/mtt.py --size paper the CIFAR-10-JPEG archive (cifar10-jpeg.tar.xz, 18.2 MB) and bench/ensemble.py
# Fashion-MNIST (FashionMNIST/raw/*.gz, 30.9 MB). A GPU machine that has no data folder of its own gets them in
# .device_data/ (ignored by git, carried with the tree): the tree (about 35 MB, most of it results/) plus the
# papermill wheels (.whl/, about 10 MB) leave room under the 64 MiB a device run takes for the CIFAR archive only,
# so --prepare copies that, and bench/ensemble.py is skipped (recorded as such) where Fashion-MNIST is absent.
# $KDNOTES_DATA, when set, is used instead of .device_data/.
# Python packages. The GPU image has torch and torchvision but not papermill, ipykernel, nbformat or fastcore:
# --prepare downloads them (with their dependencies, CPython 3.12 manylinux wheels) into .whl/, and a run installs
# whatever .whl/ holds into a scratch folder first.
set -u -o pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT_DIR=bench/results/gpu
MODE=run
TAR=
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) MODE=dry ;;
    --prepare) MODE=prepare ;;
    --out) OUT_DIR=$2; shift ;;
    --tar) TAR=$2; shift ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: error: unknown argument '$1'; expected --dry-run, --prepare, --out DIR or --tar FILE" >&2; exit 2 ;;
  esac
  shift
done
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
KD=("$PY" -c 'import sys; from kdnotes.cli import main; main(sys.argv[1:])')
BUDGET_S=480          # the whole check, on one GPU
DATA=${KDNOTES_DATA:-$ROOT/.device_data}
WHEELS="papermill ipykernel nbformat nbclient jupyter_client fastcore<1.13"

# ------------------------------------------------------------------ the plan: name, time limit (s), command
PAPER_SMOKE=$("$PY" -c "
from kdnotes.cli import experiments
from kdnotes.presets import PRESETS
print(' '.join(e for e in experiments() if 'paper_smoke' in PRESETS[e]))") || { echo "gpu_check: error: kdnotes does not import from $ROOT" >&2; exit 1; }
STEPS=()
add() { STEPS+=("$1|$2|$3"); }
for e in $PAPER_SMOKE; do
  add "paper_smoke-$e" 150 "kdnotes run $e --preset paper_smoke --device cuda --out $OUT_DIR/runs/$e-paper_smoke"
done
add ensemble 120 "python bench/ensemble.py --device cuda --epochs 5 --data-dir $DATA --out $OUT_DIR/ensemble.json"
add stacked 90 "python bench/stacked.py --device cuda --out $OUT_DIR/stacked.json"
add mtt 180 "python bench/mtt.py --size paper --device cuda --out $OUT_DIR/mtt.json"
add determinism-a 90 "kdnotes run 004_base --preset smoke --device cuda --out $OUT_DIR/runs/004_base-smoke-a"
add determinism-b 90 "kdnotes run 004_base --preset smoke --device cuda --out $OUT_DIR/runs/004_base-smoke-b"

# ------------------------------------------------------------------ checks that every entry point exists
check_entry_points() {
  local bad=0 script flag help
  for script in bench/ensemble.py bench/stacked.py bench/mtt.py; do
    if [ ! -f "$script" ]; then echo "missing: $script" >&2; bad=1; continue; fi
    help=$("$PY" "$script" --help 2>&1) || { echo "broken: $script --help failed: ${help: -500}" >&2; bad=1; continue; }
    for flag in --device --out $(case $script in *mtt.py) echo --size ;; *ensemble.py) echo --epochs --data-dir ;; esac); do
      grep -q -- "$flag" <<<"$help" || { echo "broken: $script has no $flag option" >&2; bad=1; }
    done
  done
  "$PY" - <<'EOF' || bad=1
import sys
from kdnotes.cli import experiments, experiments_dir
from kdnotes.presets import PRESETS
names, bad = experiments(), []
with_paper_smoke = [e for e in names if 'paper_smoke' in PRESETS[e]]
if not with_paper_smoke: bad.append('no experiment has a paper_smoke preset')
for e in with_paper_smoke:
    if not (experiments_dir()/f'{e}.ipynb').is_file(): bad.append(f'experiment notebook {e}.ipynb missing from {experiments_dir()}')
if '004_base' not in names or 'smoke' not in PRESETS.get('004_base', {}): bad.append("experiment 004_base with a 'smoke' preset missing")
missing = sorted(e for e in PRESETS if 'paper_smoke' in PRESETS[e] and e not in names)
if missing: bad.append(f'paper_smoke presets without an experiment notebook: {missing}')
for b in bad: print(f'missing: {b}', file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
  return $bad
}

data_note() {
  [ -f "$DATA/cifar10-jpeg.tar.xz" ] && echo "data: $DATA/cifar10-jpeg.tar.xz present" || echo "data: $DATA/cifar10-jpeg.tar.xz missing (bench/mtt.py --size paper needs it; --prepare copies it)"
  [ -d "$DATA/FashionMNIST/raw" ] && echo "data: $DATA/FashionMNIST present" || echo "data: $DATA/FashionMNIST missing: bench/ensemble.py will be skipped"
}

if [ "$MODE" = dry ]; then
  echo "gpu_check plan (budget ${BUDGET_S} s on one GPU; results under $OUT_DIR/):"
  total=0
  for s in "${STEPS[@]}"; do IFS='|' read -r name limit cmd <<<"$s"; printf '  %-28s <=%4s s  %s\n' "$name" "$limit" "$cmd"; total=$((total + limit)); done
  echo "  then: compare $OUT_DIR/runs/004_base-smoke-a and -b -> $OUT_DIR/determinism.json; $OUT_DIR/summary.json"
  echo "  (steps' limits add up to ${total} s; the run stops starting steps once ${BUDGET_S} s have passed)"
  data_note
  check_entry_points && echo "entry points: all present" || { echo "gpu_check: error: entry points missing (above)" >&2; exit 1; }
  exit 0
fi

if [ "$MODE" = prepare ]; then
  mkdir -p .device_data .whl
  src=${KDNOTES_DATA:-$ROOT/../shared/data}
  cp -v "$src/cifar10-jpeg.tar.xz" .device_data/ || { echo "gpu_check: error: $src/cifar10-jpeg.tar.xz not found; set KDNOTES_DATA" >&2; exit 1; }
  "$PY" -m pip download --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl $WHEELS || exit 1
  rm -f .whl/torch-* .whl/nvidia_* .whl/triton-* .whl/numpy-* .whl/setuptools-*   # the GPU image has these
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || { [ -d .git ] && echo '/.whl/' >> .git/info/exclude; }
  du -sh .device_data .whl
  echo "tracked tree: $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) bytes; the device takes 64 MiB in all"
  exit 0
fi

# ------------------------------------------------------------------ the run (on the GPU machine)
START=$(date +%s)
mkdir -p "$OUT_DIR/logs"
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/kdnotes-site .whl/*.whl > "$OUT_DIR/logs/pip.log" 2>&1 \
    && export PYTHONPATH="$PYTHONPATH:/tmp/kdnotes-site" || echo "pip install of .whl/ failed: see $OUT_DIR/logs/pip.log"
fi
export KDNOTES_DATA=$DATA KDNOTES_CACHE=${KDNOTES_CACHE:-/tmp/kdnotes-cache}
nvidia-smi > "$OUT_DIR/logs/nvidia-smi.txt" 2>&1
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())" > "$OUT_DIR/logs/device.txt" 2>&1 \
  || { cat "$OUT_DIR/logs/device.txt"; echo "gpu_check: error: no CUDA device" >&2; exit 1; }
data_note | tee "$OUT_DIR/logs/data.txt"
SUMMARY=()
for s in "${STEPS[@]}"; do
  IFS='|' read -r name limit cmd <<<"$s"
  now=$(( $(date +%s) - START ))
  if [ "$name" = ensemble ] && [ ! -d "$DATA/FashionMNIST/raw" ]; then rc=skipped; secs=0
  elif [ $now -ge $BUDGET_S ]; then rc=not_started; secs=0
  else
    t0=$(date +%s)
    read -r -a words <<<"$cmd"
    if [ "${words[0]}" = kdnotes ]; then run=("${KD[@]}" "${words[@]:1}"); else run=("$PY" "${words[@]:1}"); fi
    timeout "$limit" "${run[@]}" > "$OUT_DIR/logs/$name.log" 2>&1; rc=$?
    secs=$(( $(date +%s) - t0 ))
  fi
  echo "$name: rc=$rc, ${secs} s"
  SUMMARY+=("{\"step\": \"$name\", \"command\": \"$cmd\", \"rc\": \"$rc\", \"seconds\": $secs}")
done
"$PY" - "$OUT_DIR" <<'EOF' | tee "$OUT_DIR/logs/determinism.txt"
import json, math, sys
from pathlib import Path
out = Path(sys.argv[1])
TIMING = ('seconds', 'timings', 'wall_time_s', 'run_wall_time_s')
def numbers(obj, path=''):
    "Every number in `obj` with its path, timing entries left out."
    if isinstance(obj, dict): return [x for k, v in obj.items() if k not in TIMING for x in numbers(v, f'{path}/{k}')]
    if isinstance(obj, list): return [x for i, v in enumerate(obj) for x in numbers(v, f'{path}/{i}')]
    return [(path, obj)] if isinstance(obj, (int, float)) and not isinstance(obj, bool) else []
a, b = (out/'runs'/f'004_base-smoke-{s}'/'metrics.json' for s in 'ab')
if not (a.exists() and b.exists()): res = dict(compared=False, reason='a run is missing')
else:
    na, nb = numbers(json.loads(a.read_text())), numbers(json.loads(b.read_text()))
    same_paths = [p for p, _ in na] == [p for p, _ in nb]
    diffs = [abs(x - y) for (_, x), (_, y) in zip(na, nb)] if same_paths else []
    res = dict(compared=True, same_keys=same_paths, numbers=len(na), identical=same_paths and all(d == 0 for d in diffs),
               max_abs_diff=max(diffs, default=0.), differing=sum(d != 0 for d in diffs))
(out/'determinism.json').write_text(json.dumps(res, indent=1) + '\n')
print('determinism of two 004_base smoke runs on CUDA:', res)
EOF
TOTAL=$(( $(date +%s) - START ))
{ echo '{"budget_s": '$BUDGET_S', "total_s": '$TOTAL', "steps": ['; (IFS=,; echo "${SUMMARY[*]}"); echo ']}'; } > "$OUT_DIR/summary.json"
echo "gpu_check: ${TOTAL} s in all; summary in $OUT_DIR/summary.json"
if [ -n "$TAR" ]; then tar czf "$TAR" "$OUT_DIR" && echo "packed $OUT_DIR into $TAR"; fi
