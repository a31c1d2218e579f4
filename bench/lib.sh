# Shared by bench/run, bench/scale and bench/paging (sourced after BENCH_NAME is set): messages,
# CPU pinning, wrk, reading wrk's JSON line (bench/lua/pcq.lua), and the list reads by position
# that bench/paging and bench/scale time.

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

# --- List reads by position (bench/paging, bench/scale) -----------------------------------------

# paging_fill DB: in a store `pcq admin load` filled (one partner), puts every Education in
# review (as many requests in review as customers) and writes one audit record per customer,
# all in the default 30-day window, each in one statement of the sqlite3 shell.
paging_fill() {
    command -v sqlite3 >/dev/null || die "the sqlite3 shell is needed (apt-get install sqlite3)"
    sqlite3 "$1" <<'SQL'
UPDATE customer_qualifications SET vetting_status = 'InReview',
    vetting_create_date = created_at + rowid;
INSERT INTO audit_records (id, partner_tenant_id, customer_id, customer_name, resource_type,
    operation_type, operation_date, operation_status, customized_data, customer_name_lower)
SELECT lower(hex(randomblob(16))), partner_tenant_id, id, company_name, 'customer',
    'add_customer', created_at + seq, 'succeeded', '[]', lower(company_name)
FROM customers;
SQL
}

# paging_median NAME PATH TOKEN [curl args…]: prints "NAME <median ms>" of PAGING_READS [20]
# timed GETs of pcq at URL, after 5 unmeasured ones.
paging_median() {
    local name=$1 path=$2 token=$3 reads=${PAGING_READS:-20} i
    shift 3
    for i in $(seq 1 $((reads + 5))); do
        curl -sf -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" \
            -H "MS-RequestId: $(cat /proc/sys/kernel/random/uuid)" "$@" "$URL$path" ||
            die "GET $path failed"
    done | tail -n "$reads" | sort -n |
        awk -v n="$name" '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %.2f\n", n, m * 1000 }'
}

# paging_reads SIZE DATA: with pcq ($PCQ) serving the filled store in DATA at URL, prints
# "SIZE NAME <median ms>" for each list read: the review queue's first page and a page from its
# middle, a page of audit records, audit pages filtered to nothing (company-name substring,
# unknown customerId) and a page of customers, all size=100, as the loaded partner.
paging_reads() {
    local size=$1 data=$2 partner token reviewer middle= _
    partner=$(sqlite3 "$data/pcq.db" "SELECT partner_tenant_id FROM customers ORDER BY seq LIMIT 1")
    token=$("$PCQ" token --data-dir "$data" --tenant "$partner")
    reviewer=$("$PCQ" token --data-dir "$data" --tenant "$partner" --role Pcq.Reviewer)
    # A position halfway down the queue, reached 1,000 at a time.
    for _ in $(seq 1 $((size / 2000))); do
        middle=$(curl -sf -H "Authorization: Bearer $reviewer" ${middle:+-H "MS-ContinuationToken: $middle"} \
            "$URL/_pcq/review/queue?size=1000" | sed -n 's/.*"continuationToken":"\([^"]*\)".*/\1/p')
    done
    {
        paging_median review-queue "/_pcq/review/queue?size=100" "$reviewer"
        [ -z "$middle" ] || paging_median review-queue-middle "/_pcq/review/queue?size=100" \
            "$reviewer" -H "MS-ContinuationToken: $middle"
        paging_median audit-page "/v1/auditrecords?size=100" "$token"
        paging_median audit-substring-none "/v1/auditrecords?size=100" "$token" -G \
            --data-urlencode 'filter={"Field":"CompanyName","Value":"no such name","Operator":"substring"}'
        paging_median audit-customer-none \
            "/v1/auditrecords?size=100&customerId=$(cat /proc/sys/kernel/random/uuid)" "$token"
        paging_median customers-page "/v1/customers?size=100" "$token"
    } | sed "s/^/$size /"
}
