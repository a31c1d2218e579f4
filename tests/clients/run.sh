#!/usr/bin/env bash
# Drives a running pcq with two real third-party Partner Center clients from PyPI:
#   - partnercenterservices 0.1.2 (AutoRest/msrest, generated from the Partner Center swagger)
#   - ms-partner-tools 0.1.1      (requests + strict pydantic 1 models)
#
# Usage: bash tests/clients/run.sh
#
# Environment:
#   PCQ_BIN        pcq binary to test (default: build with `cargo build -p pcq`)
#   PCQ_VENV_DIR   where the two client virtualenvs live
#                  (default: ${CARGO_TARGET_DIR:-<repo>/target}/client-venvs)
#   PYTHON         interpreter used to create the venvs (default: python3)
#
# Each client gets its own venv (ms-partner-tools pins old requests/pydantic/click). A venv is
# reused when its marker file says the same requirement was installed into it successfully.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
VENV_ROOT="${PCQ_VENV_DIR:-$TARGET_DIR/client-venvs}"
STARTUP_TIMEOUT_SECONDS=20

log() { printf '[clients] %s\n' "$*" >&2; }
# shellcheck source=tests/lib/pcq-serve.sh
. "$HERE/../lib/pcq-serve.sh"

# --- the binary -------------------------------------------------------------------------------
if [[ -n "${PCQ_BIN:-}" ]]; then
    PCQ="$PCQ_BIN"
else
    log "building pcq (cargo build -p pcq)"
    (cd "$REPO" && cargo build -q -p pcq)
    PCQ="$TARGET_DIR/debug/pcq"
fi
[[ -x "$PCQ" ]] || { log "pcq binary not found or not executable: $PCQ"; exit 1; }

# --- the client venvs -------------------------------------------------------------------------
# ensure_venv DIR REQUIREMENT MODULE: creates DIR as a venv holding REQUIREMENT unless a previous
# run completed exactly that install (marker file, written last) and MODULE still imports.
ensure_venv() {
    local dir="$1" requirement="$2" module="$3"
    local marker="$dir/.pcq-client-installed"
    if [[ -f "$marker" && "$(cat "$marker")" == "$requirement" && -x "$dir/bin/python" ]] \
        && "$dir/bin/python" -c "import $module" 2>/dev/null; then
        return 0
    fi
    log "creating venv $dir with $requirement"
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    "$PYTHON" -m venv "$dir"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$dir/bin/python" -m pip install \
        --quiet --no-input --no-cache-dir "$requirement"
    printf '%s' "$requirement" >"$marker"
}

PCS_VENV="$VENV_ROOT/partnercenterservices"
MPT_VENV="$VENV_ROOT/ms-partner-tools"
ensure_venv "$PCS_VENV" "partnercenterservices==0.1.2" microsoft.store.partnercenterservices
ensure_venv "$MPT_VENV" "ms-partner-tools==0.1.1" partner_tools

# --- the server -------------------------------------------------------------------------------
WORK="$(mktemp -d -t pcq-clients.XXXXXX)"
SERVER_PID=""
cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        # Graceful shutdown first; SIGKILL only if it has not exited within 10 s.
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "pcq did not stop on SIGTERM within 10s; sending SIGKILL"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

DATA="$WORK/data"
mkdir -p "$DATA"
"$PCQ" serve --listen 127.0.0.1:0 --data-dir "$DATA" \
    >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!

wait_for_pcq "$SERVER_PID" "$WORK/server.out" "$WORK/server.log" || exit 1
URL=$PCQ_URL
PARTNER=$PCQ_PARTNER
[[ -n "$URL" && -n "$PARTNER" ]] || {
    log "could not parse the startup lines:"
    cat "$WORK/server.out" >&2
    exit 1
}
log "pcq at $URL, development partner $PARTNER"

new_guid() { "$PYTHON" -c 'import uuid; print(uuid.uuid4())'; }
OTHER_PARTNER="$(new_guid)"
ADMIN_TENANT="$(new_guid)"
# Directory Readers: a GDAP role, which the spec says GCC creates need (harmless if unchecked).
DIRECTORY_READERS="88d8e3e3-8f55-4a1e-953a-9b9898b8876b"

TOKEN_USER="$("$PCQ" token --data-dir "$DATA" --tenant "$PARTNER" \
    --user "harness.user@partner.onmicrosoft.com" --wid "$DIRECTORY_READERS")"
TOKEN_APP="$("$PCQ" token --data-dir "$DATA" --tenant "$PARTNER" --app-only)"
TOKEN_ADMIN="$("$PCQ" token --data-dir "$DATA" --tenant "$ADMIN_TENANT" --role Pcq.Admin)"
TOKEN_OTHER="$("$PCQ" token --data-dir "$DATA" --tenant "$OTHER_PARTNER" \
    --user "other.user@other.onmicrosoft.com" --wid "$DIRECTORY_READERS")"

# --- the drivers ------------------------------------------------------------------------------
# run_driver NAME PYTHON SCRIPT: runs one driver with the server's coordinates in its environment
# only (not exported, so they never reach pcq), keeping its output for the summary.
declare -A RESULT_LINE=()
FAILED_DRIVERS=()
run_driver() {
    local name="$1" python="$2" script="$3" rc=0
    log "running $name"
    PCQTEST_URL="$URL" \
    PCQTEST_PARTNER="$PARTNER" \
    PCQTEST_OTHER_PARTNER="$OTHER_PARTNER" \
    PCQTEST_TOKEN_USER="$TOKEN_USER" \
    PCQTEST_TOKEN_APP="$TOKEN_APP" \
    PCQTEST_TOKEN_ADMIN="$TOKEN_ADMIN" \
    PCQTEST_TOKEN_OTHER="$TOKEN_OTHER" \
    PARTNER_TOOLS_CONFIG="$WORK/partner-tools-config" \
    PYTHONDONTWRITEBYTECODE=1 \
        "$python" "$script" 2>&1 | tee "$WORK/$name.out" || rc=$?
    RESULT_LINE[$name]="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$WORK/$name.out" | tail -n1 || true)"
    if ((rc != 0)); then
        FAILED_DRIVERS+=("$name")
    fi
}

set +e
run_driver partnercenterservices "$PCS_VENV/bin/python" "$HERE/drive_partnercenterservices.py"
run_driver ms-partner-tools "$MPT_VENV/bin/python" "$HERE/drive_ms_partner_tools.py"
set -e

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "pcq died during the run; its log:"
    tail -n 50 "$WORK/server.log" >&2
    FAILED_DRIVERS+=("server")
fi

# --- summary ----------------------------------------------------------------------------------
total_passed=0
total_failed=0
echo
echo "== client harness summary =="
for name in partnercenterservices ms-partner-tools; do
    line="${RESULT_LINE[$name]:-}"
    if [[ -z "$line" ]]; then
        echo "$name: no result line (the driver crashed?)"
        total_failed=$((total_failed + 1))
        continue
    fi
    echo "$name: $line"
    total_passed=$((total_passed + $(awk '{print $1}' <<<"$line")))
    total_failed=$((total_failed + $(awk '{print $3}' <<<"$line")))
done
if ((${#FAILED_DRIVERS[@]} > 0)); then
    echo "failed: ${FAILED_DRIVERS[*]}"
    if ((total_failed == 0)); then total_failed=${#FAILED_DRIVERS[@]}; fi
    echo "$total_passed passed, $total_failed failed"
    exit 1
fi
echo "$total_passed passed, $total_failed failed"
