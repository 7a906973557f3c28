#!/usr/bin/env bash
# Run one shard of a sweep on this machine, without Kubernetes, as the old project's
# run-local.sh did: WORKER_ID picks the shard, TOTAL_WORKERS the shard count. Runs exactly
# the step a compute pod runs (python -m steps.compute). When every shard is done,
# `--reduce` merges them into result.parquet.
#
# Usage: infra/scripts/run-local.sh [--reduce] [SPEC]   (SPEC default: the old project's
#        placeholder worker, workflows/sweeps/placeholder.toml)
# Env:   WORKER_ID (0), TOTAL_WORKERS (3), STORE (runs), RUN_ID (<name>-local),
#        PYTHON (.venv/bin/python; `make run-local` creates it)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

step=compute
spec_file="${TTG_ROOT}/workflows/sweeps/placeholder.toml"
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --reduce) step=reduce ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) spec_file="$1" ;;
  esac
  shift
done

python="${PYTHON:-${TTG_ROOT}/.venv/bin/python}"
[[ -x "$python" ]] || command -v "$python" >/dev/null 2>&1 \
  || die "missing prerequisite: Python at '${python}' (run 'make run-local', which creates .venv, or set PYTHON)"
"$python" -c 'import numpy, pyarrow, minio' 2>/dev/null \
  || die "missing prerequisite: ${python} cannot import numpy, pyarrow and minio (run 'make run-local' or 'pip install -r docker/requirements.txt')"
[[ -f "$spec_file" ]] || die "no such spec file: ${spec_file}"

export WORKER_ID="${WORKER_ID:-0}"
export TOTAL_WORKERS="${TOTAL_WORKERS:-3}"
cd "$TTG_ROOT"
# The spec as the Workflow carries it (canonical JSON), with TOTAL_WORKERS shards.
spec_json="$("$python" -c 'import sys
from steps.spec import SpecError, load_spec
try:
    print(load_spec(sys.argv[1]).with_fields(shards=int(sys.argv[2])).to_json())
except (SpecError, ValueError) as exc:
    sys.exit(f"error: {exc}")' "$spec_file" "$TOTAL_WORKERS")"
name="$("$python" -c 'import json, sys; print(json.loads(sys.argv[1])["name"])' "$spec_json")"
store="${STORE:-runs}"
run_id="${RUN_ID:-${name}-local}"

if [[ "$step" == reduce ]]; then
  log "reduce: ${TOTAL_WORKERS} shards of '${name}' in ${store} (run ${run_id})"
  exec "$python" -m steps.reduce --spec "$spec_json" --store "$store" --run-id "$run_id"
fi
log "shard ${WORKER_ID} of ${TOTAL_WORKERS}: '${name}' into ${store} (run ${run_id})"
"$python" -m steps.compute --spec "$spec_json" --store "$store" --run-id "$run_id"
log "next: the other WORKER_IDs (0..$((TOTAL_WORKERS - 1))), then: $0 --reduce $spec_file"
