#!/usr/bin/env bash
# The web console in a real browser: Debian's chromium driven by playwright-core (from npm, no
# browser download), against `pcq serve` on SQLite and then on PostgreSQL.
#
# Usage: bash tests/console/run.sh
#
# Environment:
#   PCQ_BIN                pcq binary to test (default: ${CARGO_TARGET_DIR:-target}/debug/pcq,
#                          built with `cargo build -p pcq` when missing)
#   PCQ_CHROMIUM           the browser (default: chromium on PATH)
#   PCQ_TEST_DATABASE_URL  PostgreSQL server for the second run, in a schema of its own
#                          (skipped, and said so, when unset)
#   PCQ_SCREENSHOT_DIR     where screenshots go (default: target/console-screenshots)
#   PCQ_NPM_CACHE          npm's cache (default: ~/.cache/pcq-npm, outside the checkout)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STARTUP_TIMEOUT_SECONDS=20
log() { printf '[console] %s\n' "$*" >&2; }
# shellcheck source=tests/lib/pcq-serve.sh
. "$HERE/../lib/pcq-serve.sh"

PCQ="${PCQ_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/debug/pcq}"
if [[ ! -x "$PCQ" ]]; then
    log "building pcq (cargo build -p pcq)"
    (cd "$REPO" && cargo build -q -p pcq)
fi
[[ -x "$PCQ" ]] || { log "pcq binary not found or not executable: $PCQ"; exit 1; }
PCQ="$(cd "$(dirname "$PCQ")" && pwd)/$(basename "$PCQ")"

# What the tests need beyond cargo, from Debian's packages when missing: chromium, node and npm
# (for playwright-core), and psql for the PostgreSQL run.
missing=()
[[ -n "${PCQ_CHROMIUM:-}" ]] || command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
command -v psql >/dev/null || missing+=(postgresql-client)
if ((${#missing[@]} > 0)); then
    log "installing ${missing[*]} (apt-get)"
    as_root=()
    [[ "$(id -u)" -eq 0 ]] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2 || {
        log "could not install ${missing[*]}; install them and run again"
        exit 1
    }
fi

CHROMIUM="${PCQ_CHROMIUM:-$(command -v chromium || true)}"
[[ -n "$CHROMIUM" && -x "$CHROMIUM" ]] || {
    log "no chromium found (install Debian's chromium, or set PCQ_CHROMIUM)"
    exit 1
}

# playwright-core as the lock file pins it; installed again only when the lock file changed.
marker="$HERE/node_modules/.pcq-lock"
if [[ ! -f "$marker" ]] || ! cmp -s "$marker" "$HERE/package-lock.json"; then
    log "npm ci (playwright-core)"
    (cd "$HERE" && npm ci --no-audit --no-fund --cache "${PCQ_NPM_CACHE:-$HOME/.cache/pcq-npm}" >&2)
    cp "$HERE/package-lock.json" "$marker"
fi

SCREENSHOTS="${PCQ_SCREENSHOT_DIR:-$REPO/target/console-screenshots}"
mkdir -p "$SCREENSHOTS"
SCREENSHOTS="$(cd "$SCREENSHOTS" && pwd)"

WORK="$(mktemp -d -t pcq-console.XXXXXX)"
SERVER_PID=""
PG_SCHEMA=""
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
drop_schema() {
    if [[ -n "$PG_SCHEMA" ]]; then
        psql -q "$PCQ_TEST_DATABASE_URL" -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" >/dev/null 2>&1 || true
        PG_SCHEMA=""
    fi
}
cleanup() {
    local rc=$?
    stop_server
    drop_schema
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_backend NAME [serve args...]: starts pcq, mints the tokens the tests seed with, runs them.
run_backend() {
    local name="$1"
    shift
    local dir="$WORK/$name"
    mkdir -p "$dir/data"
    "$PCQ" serve --listen 127.0.0.1:0 --data-dir "$dir/data" "$@" \
        >"$dir/server.out" 2>"$dir/server.log" &
    SERVER_PID=$!
    wait_for_pcq "$SERVER_PID" "$dir/server.out" "$dir/server.log" || return 1
    local url=$PCQ_URL partner=$PCQ_PARTNER token_args=()
    if [[ "$name" == postgres ]]; then
        token_args=(--database-url "$PG_URL")
    else
        token_args=(--data-dir "$dir/data")
    fi
    log "$name: pcq at $url, development partner $partner"
    local rc=0
    PCQ_URL="$url" \
        PCQ_BACKEND="$name" \
        PCQ_DEV_PARTNER="$partner" \
        PCQ_PARTNER_TOKEN="$("$PCQ" token "${token_args[@]}" --tenant "$partner")" \
        PCQ_REVIEWER_TOKEN="$("$PCQ" token "${token_args[@]}" --tenant "$partner" \
            --user reviewer@partner.onmicrosoft.com --role Pcq.Reviewer)" \
        PCQ_ADMIN_TOKEN="$("$PCQ" token "${token_args[@]}" --tenant "$partner" \
            --user admin@partner.onmicrosoft.com --role Pcq.Admin)" \
        PCQ_CHROMIUM="$CHROMIUM" \
        PCQ_SCREENSHOT_DIR="$SCREENSHOTS" \
        node --test --test-reporter=spec "$HERE/console.test.mjs" || rc=$?
    stop_server
    if ((rc != 0)); then
        log "$name: pcq's log:"
        tail -n 50 "$dir/server.log" >&2
    fi
    return "$rc"
}

failed=0
run_backend sqlite || failed=1

if [[ -n "${PCQ_TEST_DATABASE_URL:-}" ]]; then
    command -v psql >/dev/null || { log "psql is needed for the PostgreSQL run"; exit 1; }
    PG_SCHEMA="pcq_console_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    psql -q "$PCQ_TEST_DATABASE_URL" -c "CREATE SCHEMA $PG_SCHEMA" >/dev/null
    sep='?'
    [[ "$PCQ_TEST_DATABASE_URL" == *\?* ]] && sep='&'
    PG_URL="${PCQ_TEST_DATABASE_URL}${sep}options[search_path]=${PG_SCHEMA}&application_name=${PG_SCHEMA}"
    run_backend postgres --database-url "$PG_URL" || failed=1
    drop_schema
else
    log "skipped the PostgreSQL run: PCQ_TEST_DATABASE_URL is not set"
fi

log "screenshots in $SCREENSHOTS"
exit "$failed"
