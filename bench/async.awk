# The async section of bench/RESULTS.md from bench/run's async.tsv: one line per point,
# tab-separated: target, N (customers), webhook (0 or 1), POST/s, seconds from the last answer to
# the last event ("-": not every event arrived within `wait` seconds), events received, non-201
# answers, socket errors. Variables: runs (points per N, target and webhook), clients, wait.

# The median of the n values in a[1..n] ("-" stands for more than any number).
function median(a, n,    i, j, t, v) {
    for (i = 2; i <= n; i++) {
        v = a[i]
        for (j = i - 1; j >= 1 && later(a[j], v); j--) a[j + 1] = a[j]
        a[j + 1] = v
    }
    if (n == 0) return "-"
    if (n % 2) return a[(n + 1) / 2]
    if (a[n / 2] == "-" || a[n / 2 + 1] == "-") return "-"
    return (a[n / 2] + a[n / 2 + 1]) / 2
}
function later(x, y) { return x == "-" ? y != "-" : (y == "-" ? 0 : x + 0 > y + 0) }
function key(t, n, h) { return t SUBSEP n SUBSEP h }
{
    k = key($1, $2, $3)
    if (!(($1, $2) in seen)) { seen[$1, $2] = 1; order[++points] = $1 SUBSEP $2 }
    c = ++count[k]
    rps[k, c] = $4; lag[k, c] = $5
    errors[$1, $2] += $7 + $8
    if ($3 == 1 && $6 + 0 < 2 * $2) short[$1, $2]++
}
END {
    print "## Webhook deliveries under write load (async)"
    print ""
    print "The `immediate` vetting policy; " clients " clients (wrk threads, one connection each)"
    print "each creating a customer and then requesting Education for it, N customers in all (2N"
    print "POSTs), on fresh servers, without a webhook and then with one registered to"
    print "`pcq-bench-receiver` on loopback (answering 200 at once, on wrk's CPU). Every request"
    print "raises one event and its decision another: 2N events. Medians of " runs " runs each;"
    print "`last event` is the time from the last answer to the last of the 2N events reaching"
    print "the receiver (0 when they had all arrived), or `-` when they had not all arrived within"
    print wait " s. Target: with a webhook, POST/s within 20% of the same load without one, and"
    print "every event delivered within 10 s of the last POST."
    print ""
    print "| Target | N | POST/s without | POST/s with | with / without | last event (s) | runs late | errors |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|"
    for (p = 1; p <= points; p++) {
        split(order[p], tn, SUBSEP)
        t = tn[1]; n = tn[2]
        for (h = 0; h <= 1; h++) {
            k = key(t, n, h)
            m = 0
            delete values
            for (i = 1; i <= count[k]; i++) values[++m] = rps[k, i]
            med[h] = median(values, m)
        }
        k = key(t, n, 1)
        m = 0
        delete values
        for (i = 1; i <= count[k]; i++) values[++m] = lag[k, i]
        l = median(values, m)
        ratio = (med[0] > 0 && med[1] > 0) ? sprintf("%.2f", med[1] / med[0]) : "-"
        printf "| %s | %d | %.0f | %.0f | %s | %s | %d of %d | %d |\n", t, n, med[0], med[1], ratio,
            l == "-" ? "-" : sprintf("%.1f", l), short[t, n], count[k], errors[t, n]
    }
    print ""
    print "`runs late`: runs with a webhook whose events had not all arrived within " wait " s;"
    print "`errors`: non-201 answers and socket errors over all the runs of the row."
}
