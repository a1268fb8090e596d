#!/usr/bin/env bash
# Two checkouts measured side by side in one sitting, alternating, so both see
# the same machine: autosave (server CPU per save), grading (100,000
# responses), coding throughput and the cold sandbox.
#
#   bench/side_by_side.sh <before-checkout> <after-checkout> [rounds]
#
# BENCHES picks some (e.g. BENCHES=autosave); AUTOSAVE_STUDENTS (default 500, each
# saving every 0.5 s) and AUTOSAVE_SECONDS (default 30) shape the autosave runs.
#
# Each checkout needs its own .venv (`make setup` in it). Traffic stays on
# 127.0.0.1; PostgreSQL and Redis are this machine's (the variables below).
# Every figure lands in $OUT (default /tmp/side_by_side), one file per run.
set -uo pipefail

before=$(realpath "$1")
after=$(realpath "$2")
rounds=${3:-2}
server=${SAFEXAM_BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
redis=${SAFEXAM_BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}
out=${OUT:-/tmp/side_by_side}
port=8123
mkdir -p "$out"

label() { [ "$1" = "$before" ] && echo before || echo after; }

autosave() {  # autosave <checkout> <round>
    local tree=$1 name db url pid
    name=$(label "$tree")
    db="safexam_sbs_${name}_$2"
    url="${server%/*}/$db"
    psql "$server" -q -o /dev/null -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$db\"" -c "CREATE DATABASE \"$db\"" >/dev/null
    (cd "$tree" && SAFEXAM_DATABASE_URL=$url .venv/bin/safexam db upgrade >/dev/null)
    (cd "$tree" && exec env SAFEXAM_DATABASE_URL="$url" SAFEXAM_REDIS_URL="$redis" \
        SAFEXAM_REDIS_NAMESPACE="sbs-$name-$2" SAFEXAM_COOKIE_SECURE=false SAFEXAM_LOG_FORMAT=json \
        SAFEXAM_SECRET_KEY="side-by-side-$name-$2-secret" \
        .venv/bin/uvicorn --factory safexam.app:create_app --workers 2 --loop uvloop \
        --http httptools --no-access-log --port $port --log-level warning) \
        >"$out/api-$name-$2.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
    (cd "$tree" && SAFEXAM_DATABASE_URL=$url .venv/bin/python bench/autosave.py \
        --url "http://127.0.0.1:$port" --students "${AUTOSAVE_STUDENTS:-500}" --interval-ms 500 --duration "${AUTOSAVE_SECONDS:-30}" \
        --server-pid "$pid") >"$out/autosave-$name-$2.txt" 2>&1
    kill "$pid"; wait "$pid" 2>/dev/null
    psql "$server" -q -o /dev/null -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null
    echo "autosave $name round $2: $(grep -i 'cpu' "$out/autosave-$name-$2.txt" | head -2 | tr '\n' ' ')"
}

grading() {
    local name
    name=$(label "$1")
    (cd "$1" && SAFEXAM_BENCH_DATABASE_URL=$server SAFEXAM_BENCH_REDIS_URL=$redis \
        .venv/bin/python bench/grading.py --sessions 2000 --questions 50 --processes 2 --threads 8) \
        >"$out/grading-$name-$2.txt" 2>&1
    echo "grading $name round $2: $(tail -3 "$out/grading-$name-$2.txt" | tr '\n' ' ')"
}

coding() {
    local name
    name=$(label "$1")
    (cd "$1" && SAFEXAM_TEST_DATABASE_URL=$server SAFEXAM_TEST_REDIS_URL=$redis \
        .venv/bin/python bench/coding.py --students 20 --questions 10) >"$out/coding-$name-$2.txt" 2>&1
    echo "coding $name round $2: $(tail -4 "$out/coding-$name-$2.txt" | tr '\n' ' ')"
}

sandbox() {
    local name
    name=$(label "$1")
    (cd "$1" && .venv/bin/python bench/sandbox.py --runs 200) >"$out/sandbox-$name-$2.txt" 2>&1
    echo "sandbox $name round $2: $(grep -E '^cold|cold:' "$out/sandbox-$name-$2.txt" | tr '\n' ' ')"
}

for bench in ${BENCHES:-autosave grading coding sandbox}; do
    for round in $(seq "$rounds"); do
        # Alternate which goes first, so neither always meets a warmer machine.
        if [ $((round % 2)) -eq 1 ]; then order="$before $after"; else order="$after $before"; fi
        for tree in $order; do
            uptime >>"$out/load.txt"
            "$bench" "$tree" "$round"
        done
    done
done
