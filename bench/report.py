#!/usr/bin/env python3
"""Turns bench/run's results.tsv into the markdown summary (bench/out/summary.md).

usage: report.py META.tsv RESULTS.tsv
RESULTS.tsv rows: section, target, round, metric, value (tab-separated).
"""
import collections
import statistics
import sys

meta = dict(line.rstrip("\n").split("\t", 1) for line in open(sys.argv[1]) if "\t" in line)
data = collections.defaultdict(list)  # (section, target, metric) -> [values]
idle = collections.defaultdict(dict)  # label -> {stage: {metric: value}}
for line in open(sys.argv[2]):
    sec, tgt, rnd, met, val = line.rstrip("\n").split("\t")
    v = float(val)
    if sec == "idle":
        idle[tgt].setdefault(int(rnd), {})[met] = v
    else:
        data[(sec, tgt, met)].append(v)


def mean(sec, tgt, met):
    v = data.get((sec, tgt, met))
    return statistics.mean(v) if v else float("nan")


def median(sec, tgt, met):
    v = data.get((sec, tgt, met))
    return statistics.median(v) if v else float("nan")


def spread(sec, tgt, met, fmt="{:.0f}"):
    v = data.get((sec, tgt, met), [])
    return " / ".join(fmt.format(x) for x in v)


def f0(x):
    return "—" if x != x else f"{x:,.0f}"


def verdict(ok, how):
    return ("met" if ok else "NOT met") + (f" ({how})" if how else "")


def has(sec):
    return any(k[0] == sec for k in data)


nan = float("nan")
r_rps = r_p99 = nan


out = []
p = out.append
p(f"commit {meta.get('commit', '?')} · {meta.get('machine', '?')} · {meta.get('date', '?')}  ")
p(f"{meta.get('versions', '')} · {meta.get('params', '')} · machine {meta.get('busy_before', '?')}% busy at start")
p("")

# 1. POST
if has("post"):
    p("### 1. tools/call POST (`query` SELECT 1), wrk 32 connections, 2 threads, keep-alive")
    p("")
    p("| target | req/s (mean) | p50 ms | p99 ms | CPU µs/request | req/s per round | p99 per round | non-2xx | socket errors |")
    p("|---|---:|---:|---:|---:|---|---|---:|---:|")
    for t in ("direct", "nginx", "mcpgate"):
        if (("post", t, "rps")) not in data:
            continue
        p(f"| {t} | {mean('post', t, 'rps'):,.0f} | {mean('post', t, 'p50'):.2f} | {mean('post', t, 'p99'):.2f} "
          f"| {mean('post', t, 'cpu_us'):.1f} "
          f"| {spread('post', t, 'rps')} | {spread('post', t, 'p99', '{:.2f}')} "
          f"| {sum(data.get(('post', t, 'non2xx'), [0])):.0f} | {sum(data.get(('post', t, 'sockerr'), [0])):.0f} |")
    r_rps = mean("post", "mcpgate", "rps") / mean("post", "nginx", "rps")
    r_p99 = mean("post", "mcpgate", "p99") / mean("post", "nginx", "p99")
    p("")
    p(f"mcpgate/nginx: req/s **{r_rps:.2f}×**, p99 **{r_p99:.2f}×** "
      f"(p50 {mean('post', 'mcpgate', 'p50') / mean('post', 'nginx', 'p50'):.2f}×, "
      f"CPU per request {mean('post', 'mcpgate', 'cpu_us') / mean('post', 'nginx', 'cpu_us'):.2f}×). "
      f"CPU of the direct row is mcp-sqlite's.")
    p("")
    fl = {t: data.get(("post", t, "foreign_pct"), []) for t in ("direct", "nginx", "mcpgate")}
    p("Other work on the machine (not this benchmark) during each run, % of both CPUs: "
      + "; ".join(f"{t} {' / '.join(f'{x:.0f}' for x in v)}" for t, v in fl.items() if v)
      + ". Runs through a proxy read ~20–25% even on a quiet machine (interrupt and idle time that no task is"
      " charged for); well above that, other work competed and req/s and p99 are unreliable. CPU µs/request"
      " is much less affected.")
    p("")

# 2. SSE
if has("sse_b1"):
    p("### 2. SSE events/s (100-byte events, POST, counted by the client; median of reps)")
    p("")
    p("| target | events/s, 1 event per upstream chunk | CPU ns/event | per rep | events/s, 16 events per upstream chunk | CPU ns/event | per rep |")
    p("|---|---:|---:|---|---:|---:|---|")
    for t in ("direct", "nginx", "nginx-64k", "mcpgate"):
        p(f"| {t} | {median('sse_b1', t, 'eps'):,.0f} | {f0(median('sse_b1', t, 'cpu_ns_per_event'))} | {spread('sse_b1', t, 'eps')} "
          f"| {median('sse_b16', t, 'eps'):,.0f} | {f0(median('sse_b16', t, 'cpu_ns_per_event'))} | {spread('sse_b16', t, 'eps')} |")
    r_sse1 = median("sse_b1", "mcpgate", "eps") / median("sse_b1", "nginx", "eps")
    r_sse16 = median("sse_b16", "mcpgate", "eps") / median("sse_b16", "nginx", "eps")
    p("")
    p(f"mcpgate/nginx: **{r_sse1:.2f}×** (1 event/chunk), **{r_sse16:.2f}×** (16 events/chunk). "
      f"The direct row's CPU is not measured.")
    p("")

# 3. bulk
if has("bulk"):
    p("### 3. Bulk download (Content-Length body, curl -o /dev/null), MB/s (10^6 bytes)")
    p("")
    p("| target | MB/s (mean) | CPU ms per GiB | per rep |")
    p("|---|---:|---:|---|")
    for t in ("direct", "nginx", "nginx-64k", "mcpgate"):
        p(f"| {t} | {mean('bulk', t, 'mbs'):,.1f} | {f0(mean('bulk', t, 'cpu_ms_per_gb'))} | {spread('bulk', t, 'mbs', '{:.1f}')} |")
    r_bulk = mean("bulk", "mcpgate", "mbs") / mean("bulk", "nginx", "mbs")
    p("")
    p(f"mcpgate/nginx: **{r_bulk:.2f}×**; mcpgate/nginx-64k: "
      f"**{mean('bulk', 'mcpgate', 'mbs') / mean('bulk', 'nginx-64k', 'mbs'):.2f}×** "
      f"(nginx-64k: the same nginx with proxy_buffer_size 64k instead of the default one page; reference only)")
    p("")

# 4. idle streams
per_stream = {}
if idle:
    p("### 4. RSS per idle SSE stream (half GET, half POST; fresh process each)")
    p("")
    p("| process | streams | established (client saw SSE head) | gateway open_streams | RSS before KiB | RSS after KiB | KiB per stream | marginal KiB/stream vs previous stage |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, stages in idle.items():
        base = stages.get(0, {}).get("rss_kib", float("nan"))
        prev_n, prev_rss = 0, base
        for n in sorted(k for k in stages if k > 0):
            st = stages[n]
            est = st.get("established", 0)
            rss = st.get("rss_kib", float("nan"))
            kps = (rss - base) / est if est else float("nan")
            marg = (rss - prev_rss) / (est - prev_n) if est > prev_n else float("nan")
            per_stream[(label, n)] = kps
            os_ = st.get("open_streams")
            p(f"| {label} | {n} | {est:.0f} | {'—' if os_ is None else f'{os_:.0f}'} | {base:,.0f} | {rss:,.0f} | {kps:.1f} | {marg:.1f} |")
            prev_n, prev_rss = est, rss
    p("")

# 5. identity
ID = ("public", "oauth", "service")
r_id = nan
if has("identity"):
    p("### 5. Identity: tools/call POST on a public route vs a token-checked route (same gateway, same upstream)")
    p("")
    p(f"{meta.get('id_params', '')}; all six orders of the three variants, one per round. "
      "public = `allow_public_unauthenticated_access: true`, no token; oauth = route that requires a token, "
      "`Authorization: Bearer` with a gateway-issued access token (client_credentials); service = the same "
      "route with a service-account token.")
    p("")
    p("| variant | req/s (mean) | p50 ms | p99 ms | CPU µs/request, gateway | CPU µs/request, all | req/s per round | p99 per round | non-2xx | socket errors |")
    p("|---|---:|---:|---:|---:|---:|---|---|---:|---:|")
    for t in ID:
        if ("identity", t, "rps") not in data:
            continue
        p(f"| {t} | {mean('identity', t, 'rps'):,.0f} | {mean('identity', t, 'p50'):.2f} | {mean('identity', t, 'p99'):.2f} "
          f"| {mean('identity', t, 'cpu_us'):.1f} | {mean('identity', t, 'cpu_all_us'):.1f} "
          f"| {spread('identity', t, 'rps')} | {spread('identity', t, 'p99', '{:.2f}')} "
          f"| {sum(data.get(('identity', t, 'non2xx'), [0])):.0f} | {sum(data.get(('identity', t, 'sockerr'), [0])):.0f} |")
    p("")
    base = "public"
    for t in ("oauth", "service"):
        if ("identity", t, "rps") not in data:
            continue
        # Per-round ratios too: both variants of a round ran minutes apart at most,
        # so the pairwise ratio cancels slow drifts of the machine.
        a = data[("identity", base, "rps")]
        b = data[("identity", t, "rps")]
        pr = [y / x for x, y in zip(a, b) if x]
        r = mean("identity", t, "rps") / mean("identity", base, "rps")
        if t == "oauth":
            r_id = r
        p(f"{t}/public: req/s **{r:.3f}×** ({(r - 1) * 100:+.1f}%), "
          f"p99 **{mean('identity', t, 'p99') / mean('identity', base, 'p99'):.2f}×** "
          f"(median of rounds {median('identity', t, 'p99'):.2f} vs {median('identity', base, 'p99'):.2f} ms: "
          f"{median('identity', t, 'p99') / median('identity', base, 'p99'):.2f}×), "
          f"p50 {mean('identity', t, 'p50') / mean('identity', base, 'p50'):.2f}×, "
          f"CPU per request {mean('identity', t, 'cpu_us') / mean('identity', base, 'cpu_us'):.3f}× "
          f"({mean('identity', t, 'cpu_us') - mean('identity', base, 'cpu_us'):+.1f} µs); "
          f"req/s ratio per round {' / '.join(f'{x:.3f}' for x in pr)} "
          f"(median {statistics.median(pr):.3f}); "
          f"CPU-bound projection (public/{t} of all CPU per request) "
          f"**{mean('identity', base, 'cpu_all_us') / mean('identity', t, 'cpu_all_us'):.3f}×**.  ")
    p("")
    p("*CPU µs/request, all* is the CPU time of the gateway, mcp-sqlite and wrk per request; on a machine they "
      "had to themselves, req/s would be inversely proportional to it, which is the *CPU-bound projection*. "
      "It is far less disturbed by other work than req/s.")
    p("")
    if ("identity", "public", "ir_per_req") in data:
        p("Instructions per request in the gateway (user space, `valgrind --tool=callgrind`, counters zeroed after "
          "a warm-up, wrk -t1 -c4). Barely affected by other work, but the totals move by about ±2,000 between "
          "runs with how many requests each event-loop iteration handles; the per-call costs in "
          "callgrind-identity-*.txt are exact:")
        p("")
        p("| variant | requests counted | instructions per request | vs public |")
        p("|---|---:|---:|---:|")
        b_ir = mean("identity", "public", "ir_per_req")
        for t in ID:
            ir = mean("identity", t, "ir_per_req")
            p(f"| {t} | {mean('identity', t, 'cg_requests'):,.0f} | {ir:,.0f} | "
              + ("—" if t == "public" else f"{ir - b_ir:+,.0f} ({(ir / b_ir - 1) * 100:+.1f}%)") + " |")
        p("")
    fl = {t: data.get(("identity", t, "foreign_pct"), []) for t in ID}
    p("Other work on the machine during each run, % of both CPUs: "
      + "; ".join(f"{t} {' / '.join(f'{x:.0f}' for x in v)}" for t, v in fl.items() if v) + ".")
    bad = sum(sum(data.get(("identity", t, k), [0])) for t in ID for k in ("non2xx", "sockerr"))
    if bad:
        p("")
        bad_runs = ", ".join(f"{t} round {r}" for t in ID for r, (a, b) in
                             enumerate(zip(data.get(("identity", t, "non2xx"), []),
                                           data.get(("identity", t, "sockerr"), [])), 1) if a or b)
        p(f"**WARNING: {bad:.0f} non-2xx answers or socket errors ({bad_runs}): failed requests are fast, so "
          "those runs overstate req/s; see the gateway's log (e.g. a refused token, or a full audit queue).**")
    p("")

# 6. full path
FT = ("nginx", "gw-public", "gw-full")
r_full = r_full_pj = nan
if has("full"):
    p("### 6. Full path: tools/call POST with token + inspection + policy + audit, against nginx")
    p("")
    p(f"{meta.get('full_params', '')}; all six orders of the three targets, one per round. "
      "nginx = `proxy_pass` to mcp-sqlite (as in section 1); gw-public = the gateway's public route "
      "(no token, default policy, audited); gw-full = a route that requires a gateway-issued access token "
      "(client_credentials), with a 3-rule Pomerium-syntax policy (allow signed-in; deny execute unless "
      "admins; deny sql containing DROP or ATTACH) and the audit trail to a file (sync false).")
    p("")
    p("| target | req/s (mean) | p50 ms | p99 ms (mean / median of rounds) | CPU µs/request, proxy | CPU µs/request, all | "
      "req/s per round | p99 per round | non-2xx | socket errors | audit records per request |")
    p("|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|")
    for t in FT:
        if ("full", t, "rps") not in data:
            continue
        nreq = sum(data.get(("full", t, "requests"), [0]))
        nrec = sum(data.get(("full", t, "audit_records"), [0]))
        arpr = "—" if t == "nginx" or not nreq else f"{nrec / nreq:.4f}"
        p(f"| {t} | {mean('full', t, 'rps'):,.0f} | {mean('full', t, 'p50'):.2f} "
          f"| {mean('full', t, 'p99'):.2f} / {median('full', t, 'p99'):.2f} "
          f"| {mean('full', t, 'cpu_us'):.1f} | {mean('full', t, 'cpu_all_us'):.1f} "
          f"| {spread('full', t, 'rps')} | {spread('full', t, 'p99', '{:.2f}')} "
          f"| {sum(data.get(('full', t, 'non2xx'), [0])):.0f} | {sum(data.get(('full', t, 'sockerr'), [0])):.0f} | {arpr} |")
    p("")
    p("| ratio to nginx | gw-full | gw-public |")
    p("|---|---:|---:|")
    rows = {}
    for t in ("gw-full", "gw-public"):
        a = data.get(("full", "nginx", "rps"), [])
        b = data.get(("full", t, "rps"), [])
        pr = [y / x for x, y in zip(a, b) if x]
        rows[t] = {
            "req/s, ratio of means (measured)": f"{mean('full', t, 'rps') / mean('full', 'nginx', 'rps'):.3f}×",
            "req/s, median of per-round ratios": f"{statistics.median(pr):.3f}×" if pr else "—",
            "req/s per round": " / ".join(f"{x:.2f}" for x in pr),
            "**req/s, CPU-bound projection** (nginx ÷ target, CPU µs/request all)":
                f"**{mean('full', 'nginx', 'cpu_all_us') / mean('full', t, 'cpu_all_us'):.3f}×**",
            "CPU per request, proxy": f"{mean('full', t, 'cpu_us') / mean('full', 'nginx', 'cpu_us'):.2f}× "
                                      f"({mean('full', t, 'cpu_us') - mean('full', 'nginx', 'cpu_us'):+.1f} µs)",
            "p99, ratio of means": f"{mean('full', t, 'p99') / mean('full', 'nginx', 'p99'):.2f}×",
            "p99, ratio of medians of rounds": f"{median('full', t, 'p99') / median('full', 'nginx', 'p99'):.2f}×",
        }
    for k in rows["gw-full"]:
        p(f"| {k} | {rows['gw-full'][k]} | {rows['gw-public'][k]} |")
    p("")
    r_full = mean("full", "gw-full", "rps") / mean("full", "nginx", "rps")
    r_full_pj = mean("full", "nginx", "cpu_all_us") / mean("full", "gw-full", "cpu_all_us")
    p(f"gw-full/gw-public: req/s {mean('full', 'gw-full', 'rps') / mean('full', 'gw-public', 'rps'):.3f}×, "
      f"CPU per request {mean('full', 'gw-full', 'cpu_us') - mean('full', 'gw-public', 'cpu_us'):+.1f} µs.")
    p("")
    if ("full", "gw-full", "ir_per_req") in data:
        p("Instructions per request (user space, `valgrind --tool=callgrind`, counters zeroed after a warm-up, "
          "wrk -t1 -c4; nginx as one process, `master_process off`, one worker):")
        p("")
        p("| target | requests counted | instructions per request | vs nginx |")
        p("|---|---:|---:|---:|")
        b_ir = mean("full", "nginx", "ir_per_req")
        for t in FT:
            ir = mean("full", t, "ir_per_req")
            if ir != ir:
                continue
            p(f"| {t} | {mean('full', t, 'cg_requests'):,.0f} | {ir:,.0f} | "
              + ("—" if t == "nginx" else f"{ir / b_ir:.2f}×") + " |")
        p("")
    v = data.get(("full", "gw-full", "audit_verified"))
    if v:
        p(f"`mcpgate audit verify` of the audit file after the runs: {'chain intact' if v[0] else '**FAILED**'}.")
        p("")
    fl = {t: data.get(("full", t, "foreign_pct"), []) for t in FT}
    p("Other work on the machine during each run, % of both CPUs: "
      + "; ".join(f"{t} {' / '.join(f'{x:.0f}' for x in v)}" for t, v in fl.items() if v) + ".")
    bad = sum(sum(data.get(("full", t, k), [0])) for t in FT for k in ("non2xx", "sockerr"))
    if bad:
        p("")
        p(f"**WARNING: {bad:.0f} non-2xx answers or socket errors.**")
    p("")

# targets
p("### Targets")
p("")
plain = [v for (lab, n), v in per_stream.items() if lab == "mcpgate-plain"]
worst_plain = max(plain) if plain else float("nan")
p("| target | measured | verdict |")
p("|---|---|---|")
if has("post"):
    p(f"| req/s ≥ 1.0× nginx | {r_rps:.2f}× | {verdict(r_rps >= 1.0, '' if r_rps >= 1.0 else f'{(1 - r_rps) * 100:.0f}% short')} |")
    p(f"| p99 no worse than nginx | {r_p99:.2f}× | {verdict(r_p99 <= 1.0, '' if r_p99 <= 1.0 else f'{(r_p99 - 1) * 100:.0f}% higher')} |")
if plain:
    p(f"| ≤ 16 KiB per idle stream (plain) | {worst_plain:.1f} KiB | {verdict(worst_plain <= 16, '' if worst_plain <= 16 else f'{worst_plain - 16:.1f} KiB over')} |")
if has("identity"):
    p(f"| token check costs ≤ 5% of req/s (oauth/public ≥ 0.95), measured | {r_id:.3f}× | "
      f"{verdict(r_id >= 0.95, '' if r_id >= 0.95 else f'{(1 - r_id) * 100:.1f}% lost')} |")
    pj = mean("identity", "public", "cpu_all_us") / mean("identity", "oauth", "cpu_all_us")
    if pj == pj:
        p(f"| the same, CPU-bound projection | {pj:.3f}× | "
          f"{verdict(pj >= 0.95, '' if pj >= 0.95 else f'{(1 - pj) * 100:.1f}% lost')} |")
if has("full"):
    p(f"| full path req/s ≥ 1.0× nginx, measured | {r_full:.3f}× | "
      f"{verdict(r_full >= 1.0, '' if r_full >= 1.0 else f'{(1 - r_full) * 100:.1f}% short')} |")
    if r_full_pj == r_full_pj:
        p(f"| the same, CPU-bound projection | {r_full_pj:.3f}× | "
          f"{verdict(r_full_pj >= 1.0, '' if r_full_pj >= 1.0 else f'{(1 - r_full_pj) * 100:.1f}% short')} |")
print("\n".join(out))
