# Tables of bench/RESULTS.md from the results of bench/run: one line per point, tab-separated:
# scenario, target, req/s, p50 ms, p99 ms, requests, non-2xx answers, socket errors, load
# average (1 minute) after the point (or "failed" in place of req/s). Variable: connections
# (wrk's -c).
function fmt(x) { return sprintf("%.0f", x) }
function has(s, t) { return (s, t) in rps }
# The requests per second of a point, 0 when it was not measured (without creating it).
function r(s, t) { return has(s, t) ? rps[s, t] : 0 }
function ratio(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f", a / b) : "-" }
function pct(a, b) { return (a > 0 && b > 0) ? sprintf("%.0f%%", 100 * a / b) : "-" }
function met(ok) { return ok ? "**met**" : "not met" }
# The verdict over several scenarios: met in all, in none, or in those listed.
function verdict(n_met, n, which) { return n_met == n ? met(1) : n_met == 0 ? met(0) : "met in " which " only" }
{
    s = $1; t = $2
    if (!(s in seen_s)) { seen_s[s] = 1; scenarios[++ns] = s }
    if (!(t in seen_t)) { seen_t[t] = 1; targets[++nt] = t }
    if ($3 == "failed") { failed[s, t] = 1; next }
    rps[s, t] = $3; p50[s, t] = $4; p99[s, t] = $5; errors[s, t] = $7 + $8; load[s, t] = $9
}
END {
    print "## Results"
    print ""
    print "Requests per second, latency percentiles of the measured run, non-2xx answers and"
    print "socket errors (`errors`), the share of the ceiling in the same scenario, and the"
    print "machine's 1-minute load average after the point (it lags, and counts the benchmark's"
    print "own processes and PostgreSQL's backends too: a hint only). The ceiling does about the"
    print "same work in every scenario, so its spread across scenarios shows how much other work"
    print "on the machine disturbed the run."
    print ""
    print "| Scenario | Target | req/s | p50 ms | p99 ms | errors | of ceiling | load |"
    print "|---|---|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= ns; i++) for (j = 1; j <= nt; j++) {
        s = scenarios[i]; t = targets[j]
        if (failed[s, t]) { printf "| %s | %s | failed | | | | | |\n", s, t; continue }
        if (!((s, t) in rps)) continue
        printf "| %s | %s | %s | %.2f | %.2f | %d | %s | %s |\n", s, t, fmt(rps[s, t]),
            p50[s, t], p99[s, t], errors[s, t], pct(rps[s, t], r(s, "ceiling")), load[s, t]
    }
    print ""
    print "## Ratios"
    print ""
    print "Requests per second of pcq over those of the ceiling and of each peer, same scenario."
    print ""
    print "| Scenario | pcq target | / ceiling | / Prism | / WireMock |"
    print "|---|---|---:|---:|---:|"
    for (i = 1; i <= ns; i++) for (j = 1; j <= nt; j++) {
        s = scenarios[i]; t = targets[j]
        if (t !~ /^pcq/ || !((s, t) in rps)) continue
        printf "| %s | %s | %s | %s | %s |\n", s, t, ratio(rps[s, t], r(s, "ceiling")),
            ratio(rps[s, t], r(s, "prism")), ratio(rps[s, t], r(s, "wiremock"))
    }
    print ""
    print "## Targets"
    print ""
    print "Stated at " connections " connections; reported here, not enforced."
    print ""
    print "| Target | Measured | |"
    print "|---|---|---|"
    for (j = 1; j <= nt; j++) {
        t = targets[j]
        if (t !~ /^pcq/) continue
        if (("get", t) in rps && ("get", "ceiling") in rps)
            printf "| GET qualifications >= 50%% of the ceiling | %s: %s | %s |\n", t,
                pct(rps["get", t], r("get", "ceiling")), met(rps["get", t] >= 0.5 * r("get", "ceiling"))
        if (("post", t) in rps && ("post", "ceiling") in rps)
            printf "| durable POST >= 35%% of the ceiling | %s: %s | %s |\n", t,
                pct(rps["post", t], r("post", "ceiling")), met(rps["post", t] >= 0.35 * r("post", "ceiling"))
    }
    if (("get", "pcq-sqlite") in rps && ("get", "pcq-sqlite-nojournal") in rps)
        printf "| GET with the request journal >= 95%% of GET without | pcq-sqlite / pcq-sqlite-nojournal: %s | %s |\n",
            pct(rps["get", "pcq-sqlite"], rps["get", "pcq-sqlite-nojournal"]),
            met(rps["get", "pcq-sqlite"] >= 0.95 * rps["get", "pcq-sqlite-nojournal"])
    for (j = 1; j <= nt; j++) {
        t = targets[j]
        if (t !~ /^pcq/) continue
        n = 0; n_met = 0; list = ""; which = ""
        for (i = 1; i <= ns; i++) {
            s = scenarios[i]
            if (!((s, t) in rps)) continue
            list = list (list == "" ? "" : ", ") s " " sprintf("%.2f", p99[s, t])
            n++
            if (p99[s, t] + 0 <= 10) { n_met++; which = which (which == "" ? "" : ", ") s }
        }
        if (n > 0)
            printf "| p99 <= 10 ms | %s: %s ms | %s |\n", t, list, verdict(n_met, n, which)
    }
    for (j = 1; j <= nt; j++) {
        t = targets[j]
        if (t !~ /^pcq-postgres/ || !(("post", t) in rps)) continue
        printf "| PostgreSQL POST >= 4,000/s | %s: %s/s | %s |\n", t, fmt(rps["post", t]), met(rps["post", t] >= 4000)
    }
    # Against the baseline (BENCH_BASELINE): durable writes at least twice as fast.
    split("pcq-sqlite pcq-postgres", pairs, " ")
    for (k = 1; k <= 2; k++) {
        t = pairs[k]; b = t "-base"
        for (i = 1; i <= ns; i++) {
            s = scenarios[i]
            if (!((s, t) in rps) || !((s, b) in rps)) continue
            if (s == "post" || s == "create")
                printf "| %s %s >= 2x the baseline | %s / %s: %s | %s |\n", t, s, t, b,
                    ratio(rps[s, t], rps[s, b]), met(rps[s, t] >= 2 * rps[s, b])
            else
                printf "| %s %s against the baseline | %s / %s: %s | |\n", t, s, t, b, ratio(rps[s, t], rps[s, b])
        }
    }
    split("prism 20 Prism wiremock 5 WireMock", peers, " ")
    for (k = 1; k <= 6; k += 3) {
        peer = peers[k]; times = peers[k + 1]; name = peers[k + 2]
        for (j = 1; j <= nt; j++) {
            t = targets[j]
            if (t !~ /^pcq/) continue
            n = 0; n_met = 0; list = ""; which = ""
            for (i = 1; i <= ns; i++) {
                s = scenarios[i]
                if (!((s, t) in rps) || !((s, peer) in rps)) continue
                x = rps[s, t] / rps[s, peer]
                list = list (list == "" ? "" : ", ") s " " sprintf("%.1fx", x)
                n++
                if (x >= times) { n_met++; which = which (which == "" ? "" : ", ") s }
            }
            if (n > 0)
                printf "| >= %dx %s, same scenario | %s: %s | %s |\n", times, name, t, list, verdict(n_met, n, which)
        }
    }
}
