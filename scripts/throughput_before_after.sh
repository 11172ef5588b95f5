#!/usr/bin/env bash
# ganforge's CPU throughput ratio against the plain loop at another commit and at the working tree, in
# one run: the two alternate ROUNDS times (each round itself alternates plain and ganforge 3 times), so
# both see the same machine load. Prints every round's ratio and writes the JSON files to OUT.
#   bash scripts/throughput_before_after.sh 825bff3 [ROUNDS=3] [OUT=outputs/throughput_before_after]
# Extra benchmark flags after the first three arguments (default: the README's CPU DCGAN setting).
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:?give the commit to compare with, e.g. 825bff3}
ROUNDS=${2:-3}
OUT=${3:-outputs/throughput_before_after}
shift $(( $# < 3 ? $# : 3 ))
FLAGS=("$@")
[ ${#FLAGS[@]} -gt 0 ] || FLAGS=(--device cpu --threads 1 --resolution 32 --batch-size 32 --base-channels 16
  --warmup 5 --steps 100 --repeats 3 --mode fp32)
PY=${PYTHON:-.venv/bin/python}
OLD=$(mktemp -d)
trap 'git worktree remove --force "$OLD" >/dev/null 2>&1 || true' EXIT
git worktree add -q --detach "$OLD" "$BEFORE"
mkdir -p "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for side in before after; do
    src=$([ "$side" = before ] && echo "$OLD/src" || echo "$PWD/src")
    PYTHONPATH="$src" "$PY" -m ganforge.benchmarks.throughput "${FLAGS[@]}" --out "$OUT/${side}_$round.json" >/dev/null
    "$PY" -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"round $round $side: plain {r['plain_img_per_s']:,.0f} img/s, ganforge {r['ganforge_img_per_s']:,.0f} img/s, ratio {r['ratio']:.3f}\")" "$OUT/${side}_$round.json"
  done
done
"$PY" - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
for side in ("before", "after"):
    ratios = [json.load(open(f"{out}/{side}_{r}.json"))["results"][0]["ratio"] for r in range(1, rounds + 1)]
    print(f"{side}: median ratio {statistics.median(ratios):.3f} over {rounds} rounds ({', '.join(f'{x:.3f}' for x in ratios)})")
PY
