# Shared by bench/run and bench/scale (sourced after BENCH_NAME is set): messages, CPU pinning,
# wrk, and reading wrk's JSON line (bench/lua/pcq.lua).

say() { echo "$BENCH_NAME: $*" >&2; }
die() {
    say "$*"
    exit 1
}

# CPU pinning (BENCH_PIN, BENCH_SERVER_CPUS, BENCH_WRK_CPUS): on a machine with two or more CPUs,
# wrk on the last one and the servers on the others.
CPUS=$(nproc)
SERVER_CPUS= WRK_CPUS=
if [ "${BENCH_PIN:-1}" = 1 ] && [ "$CPUS" -ge 2 ]; then
    SERVER_CPUS=0-$((CPUS - 2)) WRK_CPUS=$((CPUS - 1))
    [ "$CPUS" = 2 ] && SERVER_CPUS=0
fi
SERVER_CPUS=${BENCH_SERVER_CPUS:-$SERVER_CPUS}
WRK_CPUS=${BENCH_WRK_CPUS:-$WRK_CPUS}
# The taskset prefix of a server or of wrk (nothing when not pinned); used unquoted.
server_pin() { if [ -n "$SERVER_CPUS" ]; then echo taskset -c "$SERVER_CPUS"; fi; }
wrk_pin() { if [ -n "$WRK_CPUS" ]; then echo taskset -c "$WRK_CPUS"; fi; }

# ensure_wrk: installs wrk from Debian's packages when it is missing.
ensure_wrk() {
    command -v wrk >/dev/null 2>&1 && return 0
    say "wrk is missing: installing it with apt-get"
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y wrk >&2 || { apt-get update >&2 && apt-get install -y wrk >&2; } ||
            die "could not install wrk (apt-get install -y wrk)"
    else
        sudo apt-get install -y wrk >&2 || die "could not install wrk (sudo apt-get install -y wrk)"
    fi
}

# field LINE NAME: a number of wrk's JSON line.
field() { sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" <<<"$1"; }
