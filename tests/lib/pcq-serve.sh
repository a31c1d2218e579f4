# Shared by the test scripts that start `pcq serve` in the background (tests/*/run.sh); source it
# after defining log() and STARTUP_TIMEOUT_SECONDS.

# wait_for_pcq PID OUT LOG: waits until the pcq serve with pid PID, printing to the files OUT and
# LOG, has printed its start-up lines, then sets PCQ_URL and PCQ_PARTNER from them. Returns 1
# (after showing LOG) if pcq exits first or takes longer than STARTUP_TIMEOUT_SECONDS.
wait_for_pcq() {
    local pid=$1 out=$2 err=$3
    local deadline=$((SECONDS + STARTUP_TIMEOUT_SECONDS))
    until grep -q '^development partner tenant: ' "$out" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "pcq exited before it was ready; its log:"
            cat "$err" >&2
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "pcq did not print its start-up lines within ${STARTUP_TIMEOUT_SECONDS}s; its log:"
            cat "$err" >&2
            return 1
        fi
        sleep 0.1
    done
    PCQ_URL="$(sed -n 's/^pcq listening on \(http:\/\/[^ ]*\)$/\1/p' "$out" | head -n1)"
    PCQ_PARTNER="$(sed -n 's/^development partner tenant: \([0-9a-fA-F-]*\)$/\1/p' "$out" | head -n1)"
}
