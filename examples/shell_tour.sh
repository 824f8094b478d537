#!/usr/bin/env bash
# Poke objects from the shell with the `durable` command (pip install "cloudflare-durable[server]").
#
# Run it with `bash examples/shell_tour.sh`. With no CLOUDFLARE_WORKER_URL it uses the
# embedded host (durable.sqlite3 in the current folder), which runs the methods of the
# models that --models loads; with CLOUDFLARE_WORKER_URL (and CLOUDFLARE_DURABLE_TOKEN)
# the same lines talk to `durable serve` or the Worker.
set -euo pipefail
models=(--models "$(dirname "$0")/counter.py")

durable call Counter shell-tour reset "${models[@]}"
durable call Counter shell-tour increment by=2 "${models[@]}"             # prints 2
durable call Counter shell-tour increment --args '{"by": 3}' "${models[@]}" --json
durable get Counter shell-tour "${models[@]}"                             # a table
value=$(durable get Counter shell-tour "${models[@]}" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["state"]["value"])')
echo "value from a script: $value"
durable watch Counter shell-tour --count 1 "${models[@]}"                 # one JSON line
status=0
durable call Counter shell-tour increment by=oops "${models[@]}" 2>/dev/null || status=$?
echo "a refused call exits with status $status"                         # 1

durable call Counter shell-tour-2 increment by=7 "${models[@]}"
durable ls Counter --prefix shell-tour "${models[@]}"                    # both ids
durable export Counter --prefix shell-tour "${models[@]}" > counters.jsonl
durable import counters.jsonl --store copy.sqlite3 "${models[@]}"         # into another store
echo "copied: $(durable ls Counter --store copy.sqlite3 "${models[@]}" | tr '\n' ' ')"
