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


out = []
p = out.append
p(f"commit {meta.get('commit', '?')} · {meta.get('machine', '?')} · {meta.get('date', '?')}  ")
p(f"{meta.get('versions', '')} · {meta.get('params', '')} · machine {meta.get('busy_before', '?')}% busy at start")
p("")

# 1. POST
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
p("### 4. RSS per idle SSE stream (half GET, half POST; fresh process each)")
p("")
p("| process | streams | established (client saw SSE head) | gateway open_streams | RSS before KiB | RSS after KiB | KiB per stream | marginal KiB/stream vs previous stage |")
p("|---|---:|---:|---:|---:|---:|---:|---:|")
per_stream = {}
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

# targets
p("### Targets")
p("")
plain = [v for (lab, n), v in per_stream.items() if lab == "mcpgate-plain"]
worst_plain = max(plain) if plain else float("nan")
p("| target | measured | verdict |")
p("|---|---|---|")
p(f"| req/s ≥ 1.0× nginx | {r_rps:.2f}× | {verdict(r_rps >= 1.0, '' if r_rps >= 1.0 else f'{(1 - r_rps) * 100:.0f}% short')} |")
p(f"| p99 no worse than nginx | {r_p99:.2f}× | {verdict(r_p99 <= 1.0, '' if r_p99 <= 1.0 else f'{(r_p99 - 1) * 100:.0f}% higher')} |")
p(f"| ≤ 16 KiB per idle stream (plain) | {worst_plain:.1f} KiB | {verdict(worst_plain <= 16, '' if worst_plain <= 16 else f'{worst_plain - 16:.1f} KiB over')} |")
print("\n".join(out))
