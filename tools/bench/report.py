#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report.py - turn the raw results of tools/bench/run.sh into docs/benchmarks.md.

Reads, from the run's temporary directory: results.tsv (measurement, target, rep, metric,
value), notes.tsv (target, measurement, rep, text), probes.tsv, meta.tsv and conf/*.
"""
import argparse
import os
import statistics
import sys

NAMES = {
    "direct": "direct (no proxy)",
    "haproxy": "HAProxy (mode http)",
    "haproxy-tcp": "HAProxy (mode tcp)",
    "nginx": "nginx",
    "spliced": "spliced",
    "spliced-nosplice": "spliced --no-splice",
}
SPLICED = ["spliced", "spliced-nosplice"]
BASES = [("direct", "direct"), ("haproxy", "HAProxy"), ("nginx", "nginx")]

# measurement -> title, [(metric, label, higher_is_better, format)]
MEASUREMENTS = [
    ("download", "Bulk download", [
        ("gbps", "GB/s", True, "{:.2f}"),
        ("cpu_machine", "machine CPU s/GiB", False, "{:.2f}"),
        ("cpu_proxy", "proxy process CPU s/GiB", False, "{:.2f}"),
    ]),
    ("upload", "Bulk upload", [
        ("gbps", "GB/s", True, "{:.2f}"),
        ("cpu_machine", "machine CPU s/GiB", False, "{:.2f}"),
        ("cpu_proxy", "proxy process CPU s/GiB", False, "{:.2f}"),
    ]),
    ("keepalive", "Keep-alive small requests", [
        ("rps", "req/s", True, "{:,.0f}"),
        ("p99_us", "p99 latency µs", False, "{:,.0f}"),
        ("errors", "errors", False, "{:,.0f}"),
    ]),
    ("close", "Connection-close rate", [
        ("rps", "req/s", True, "{:,.0f}"),
        ("errors", "errors", False, "{:,.0f}"),
    ]),
    ("pingpong", "Ping-pong round trip", [
        ("onecpu_median_us", "one CPU: median µs", False, "{:.1f}"),
        ("onecpu_p99_us", "one CPU: p99 µs", False, "{:.1f}"),
        ("free_median_us", "free: median µs", False, "{:.1f}"),
        ("free_p99_us", "free: p99 µs", False, "{:.1f}"),
    ]),
    ("tunnel", "Tunnel ping-pong round trip", [
        ("onecpu_median_us", "one CPU: median µs", False, "{:.1f}"),
        ("onecpu_p99_us", "one CPU: p99 µs", False, "{:.1f}"),
        ("free_median_us", "free: median µs", False, "{:.1f}"),
        ("free_p99_us", "free: p99 µs", False, "{:.1f}"),
    ]),
]
# the metrics that get spliced / X ratios
RATIO_METRICS = {
    "download": ["gbps", "cpu_machine"],
    "upload": ["gbps", "cpu_machine"],
    "keepalive": ["rps", "p99_us"],
    "close": ["rps"],
    "pingpong": ["onecpu_median_us", "free_median_us"],
    "tunnel": ["onecpu_median_us", "free_median_us"],
}


def read_tsv(path, ncols):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t")
            parts += [""] * (ncols - len(parts))
            rows.append(parts[:ncols - 1] + ["\t".join(parts[ncols - 1:])])
    return rows


class Results:
    def __init__(self, rows, reps):
        self.reps = reps
        self.v = {}  # (m, t, metric) -> {rep: float or None}
        for m, t, rep, metric, value in rows:
            try:
                val = float(value)
            except ValueError:
                val = None
            self.v.setdefault((m, t, metric), {})[int(rep)] = val
        # a failed transfer records only its main metric: count it as failed for all
        self.failed = {(m, t, rep) for (m, t, metric), d in self.v.items()
                       for rep, val in d.items() if val is None}

    def runs(self, m, t, metric):
        d = self.v.get((m, t, metric), {})
        return [d.get(r) if (m, t, r) not in self.failed else None
                for r in range(1, self.reps + 1)]

    def median(self, m, t, metric):
        ok = [x for x in self.runs(m, t, metric) if x is not None]
        return statistics.median(ok) if ok else None

    def nok(self, m, t, metric):
        return sum(1 for x in self.runs(m, t, metric) if x is not None)


def fmt(x, f):
    return "—" if x is None else f.format(x)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return "{:.2f}×".format(a / b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    tmp = args.tmp

    meta = {k: v for k, v in read_tsv(os.path.join(tmp, "meta.tsv"), 2)}
    reps = int(meta["reps"])
    res = Results(read_tsv(os.path.join(tmp, "results.tsv"), 5), reps)
    notes = read_tsv(os.path.join(tmp, "notes.tsv"), 4)
    probes = read_tsv(os.path.join(tmp, "probes.tsv"), 4)
    targets = meta["targets"].split()
    ports = dict(p.split("=", 1) for p in meta["ports"].split())
    up_mib = int(meta["up_mib"])
    wrk = "wrk -t{} -c{} -d{}s --latency".format(meta["wrk_threads"], meta["wrk_conns"],
                                                  meta["wrk_secs"])
    titles = {
        "download": "{} — `curl -o /dev/null http://HOST/size/{}`".format(
            "Bulk download", meta["dl_size"]),
        "upload": "{} — `curl -T` of a {} MiB file in /dev/shm to `/upload`".format(
            "Bulk upload", up_mib),
        "keepalive": "Keep-alive small requests — `{} http://HOST/`".format(wrk),
        "close": "Connection-close rate — `{} -H 'Connection: close' http://HOST/`".format(wrk),
        "pingpong": ("Ping-pong round trip — {} sequential keep-alive `GET /` on one "
                     "connection (after {} warm-up requests)").format(meta["pp_count"],
                                                                      meta["pp_warmup"]),
        "tunnel": ("Tunnel ping-pong round trip — WebSocket upgrade of `GET /ws`, then {} "
                   "sequential {}-byte round trips through the tunnel (after {} warm-up "
                   "round trips)").format(meta["pp_count"], meta.get("tunnel_bytes", "?"),
                                          meta["pp_warmup"]),
    }

    o = []
    w = o.append
    w("# spliced benchmarks")
    w("")
    w("<!-- Generated by tools/bench/run.sh (make bench). Do not edit by hand: rerun it. -->")
    w("")
    w("Generated by `tools/bench/run.sh` ({} mode, {} repetition{} per measurement, "
      "**median** reported) on {}.".format(meta["mode"], reps, "" if reps == 1 else "s",
                                           meta["date"]))
    w("")
    w("> **These numbers are noisy.** They come from a shared 2-vCPU virtual machine on which "
      "the load generator, the origin and the proxy all compete for the same two CPUs (and "
      "with whatever else the VM runs: with this script idle, the machine's CPUs were {} busy "
      "just before the measurements and {} just after; load average {} at the start, {} at "
      "the end; CPU steal is recorded below). Differences of less than ~15% between runs or targets should "
      "not be read as meaningful; compare ratios within one run, never numbers across "
      "runs or machines.".format(meta.get("busy_start", "?"), meta.get("busy_end", "?"),
                                 meta.get("load_start", "?"), meta.get("load_end", "?")))
    w("")
    w("Every target forwards to the **same origin process** (`tests/origin`), all on loopback "
      "(127.0.0.1). Each proxy runs {} worker threads/processes.".format(meta["workers"]))
    w("")

    # ---- summary ----
    w("## Summary")
    w("")
    w("Medians. Ratios are spliced ÷ other: above 1 is better for throughput and request "
      "rates, below 1 is better for CPU and latency.")
    w("")
    hdr = ["measurement", "metric"] + [NAMES[t] for t in targets]
    for s in SPLICED:
        if s in targets:
            hdr += ["{} ÷ {}".format("spliced" if s == "spliced" else "--no-splice", b)
                    for t_, b in BASES if t_ in targets]
    w("| " + " | ".join(hdr) + " |")
    w("|" + "|".join(["---", "---"] + ["---:"] * (len(hdr) - 2)) + "|")
    for m, _title, metrics in MEASUREMENTS:
        for metric, label, hib, f in metrics:
            if metric not in RATIO_METRICS[m]:
                continue
            row = [m, "{} ({} is better)".format(label, "higher" if hib else "lower")]
            row += [fmt(res.median(m, t, metric), f) for t in targets]
            for s in SPLICED:
                if s in targets:
                    row += [ratio(res.median(m, s, metric), res.median(m, b, metric))
                            for b, _ in BASES if b in targets]
            w("| " + " | ".join(row) + " |")
    w("")

    fails = [n for n in notes]
    if fails:
        w("**{} problem{} recorded during the run** — see [Problems](#problems-seen-during-"
          "this-run).".format(len(fails), "" if len(fails) == 1 else "s"))
        w("")

    # ---- per measurement ----
    for m, _title, metrics in MEASUREMENTS:
        w("## " + titles[m])
        w("")
        hdr = ["target"]
        for metric, label, hib, f in metrics:
            hdr += ["{} (median)".format(label)]
            if reps > 1:
                hdr += ["{} runs".format(label)]
        w("| " + " | ".join(hdr) + " |")
        w("|" + "|".join(["---"] + ["---:"] * (len(hdr) - 1)) + "|")
        for t in targets:
            row = [NAMES[t]]
            for metric, label, hib, f in metrics:
                if metric == "cpu_proxy" and t == "direct":
                    row += ["n/a"] + (["n/a"] if reps > 1 else [])
                    continue
                med = res.median(m, t, metric)
                n = res.nok(m, t, metric)
                cell = fmt(med, f) if med is not None else "FAILED"
                if med is not None and n < reps:
                    cell += " ({}/{} ok)".format(n, reps)
                row.append(cell)
                if reps > 1:
                    row.append(" / ".join("fail" if x is None else f.format(x)
                                          for x in res.runs(m, t, metric)))
            w("| " + " | ".join(row) + " |")
        w("")
        w("| ratio | " + " | ".join("÷ " + b for t_, b in BASES if t_ in targets) + " |")
        w("|---|" + "---:|" * sum(1 for t_, _ in BASES if t_ in targets))
        for s in SPLICED:
            if s not in targets:
                continue
            for metric, label, hib, f in metrics:
                if metric not in RATIO_METRICS[m]:
                    continue
                row = ["{} {} ({} is better)".format(NAMES[s], label,
                                                    "higher" if hib else "lower")]
                row += [ratio(res.median(m, s, metric), res.median(m, b, metric))
                        for b, _ in BASES if b in targets]
                w("| " + " | ".join(row) + " |")
        w("")
        if m == "keepalive":
            w("p99 is the most fragile number here: wrk, the proxy and the origin share two "
              "vCPUs, so one preemption by anything else shows up as a p99 of tens of "
              "milliseconds in that run (look at the individual runs before reading the "
              "median).")
            w("")
        if m == "pingpong":
            w("Round-trip latency on this VM is bimodal: about 7 µs when the client and the "
              "server it wakes share a vCPU, about 70 µs when the wake-up crosses to the other "
              "vCPU, and the scheduler picks at random. *One CPU* pins the client, the origin "
              "and every thread of the proxy to CPU 0 for the measurement: a stable number "
              "that is the software path length of one round trip. *Free* leaves scheduling "
              "alone (like every other measurement here) and mostly shows which mode the "
              "scheduler happened to pick.")
            w("")
        if m == "tunnel":
            w("The client upgrades one connection (`Upgrade: websocket`; the origin answers "
              "`101` and then echoes raw bytes) and times {}-byte messages out and back, with "
              "the same *one CPU* and *free* variants as above. After the `101`, spliced hands "
              "the tunnel to the kernel: both sockets go into its sockmap and the sk_skb "
              "program redirects the bytes from one to the other, so the daemon no longer "
              "touches them; spliced --no-splice relays them in the daemon, which is woken for "
              "every message and moves it with splice(2) through a pipe. "
              "HAProxy and nginx also relay the tunnel in their own processes. The "
              "kernel redirect is not a direct call: it is queued to a kernel work item (the "
              "psock backlog worker), which must be scheduled to move the bytes, so on one "
              "CPU each direction costs a context switch just as a wake-up of the daemon "
              "does.".format(meta.get("tunnel_bytes", "?")))
            w("")
        if m in ("download", "upload"):
            steal = [res.median(m, t, "steal_s") for t in targets]
            w("CPU s/GiB: *machine* is the /proc/stat delta over the transfer, all CPUs, "
              "user + system + softirq (so it includes curl, the origin and anything else "
              "running on the VM); *proxy process* is utime + stime of the proxy's own "
              "processes. Median CPU steal during the transfers: {} s.".format(
                  ", ".join("{} {}".format(NAMES[t], fmt(s, "{:.2f}"))
                            for t, s in zip(targets, steal))))
            if m == "upload":
                w("")
                w("curl runs with `-H 'Expect:'` so that it does not wait for a "
                  "`100 Continue`: this measures the data path, not the interim-response "
                  "handling (probed separately below).")
            w("")

    # ---- probes ----
    w("## Functional probes (once per target, before the loads)")
    w("")
    w("`GET /size/64m` compared by sha256 with the origin's body; 20 uploads of the same 8 MiB "
      "of random data, each with a 3 s limit, whose answer must carry the right sha256; time until a `100 Continue` reaches a client that sent "
      "`Expect: 100-continue` and waits for it (curl waits 1 s before sending the body "
      "anyway).")
    w("")
    w("| target | download 64 MiB | upload 8 MiB ×20 | 100 Continue after |")
    w("|---|---|---|---:|")
    for t, dl, up, exp in probes:
        try:
            exp = "{:.1f} ms".format(float(exp))
        except ValueError:
            exp = "**{}**".format(exp)
        dl = dl if dl == "ok" else "**{}**".format(dl)
        n = up.split("/")[0]
        up = up if up.startswith(n + "/" + n + " ") else "**{}**".format(up)
        w("| {} | {} | {} | {} |".format(NAMES.get(t, t), dl, up, exp))
    w("")

    # ---- problems ----
    w("## Problems seen during this run")
    w("")
    if not notes:
        w("None: every transfer completed with the right size and checksum, wrk reported no "
          "socket errors and no non-2xx responses, and no target process exited.")
    else:
        w("Failed runs are excluded from the medians (the cell shows how many runs were ok). "
          "A target whose process died is restarted before its next measurement "
          "({} restart{} in this run).".format(meta["restarts"],
                                              "" if meta["restarts"] == "1" else "s"))
        w("")
        w("| target | measurement | run | what happened |")
        w("|---|---|---|---|")
        for t, m, rep, text in notes:
            text = text.replace("|", "\\|").strip()
            if len(text) > 400:
                text = text[:400] + " …"
            w("| {} | {} | {} | {} |".format(NAMES.get(t, t), m, rep, text))
    w("")

    # ---- method ----
    w("## Method and exact commands")
    w("")
    w("Ports of this run: " + ", ".join("{} {}".format(k, v) for k, v in ports.items()) + ".")
    w("Each repetition runs every measurement against every target in turn (targets "
      "interleaved, so slow drifts of the machine hit all of them alike); the order is "
      "download, upload, ping-pong, tunnel ping-pong, keep-alive, connection-close. "
      "Measurement phase took {} s.".format(meta["runtime_s"]))
    w("")
    w("```sh")
    w("origin -p {} -n bench                       # tests/origin, the one backend".format(
        ports["origin"]))
    w("haproxy -f haproxy.cfg -db")
    w("nginx -c nginx.conf -p PREFIX -e error.log -g 'daemon off;'")
    w("spliced -d -f spliced.conf")
    w("spliced -d -f spliced-nosplice.conf --no-splice")
    w("")
    w("# per target PORT, per repetition:")
    w("curl -sS -o /dev/null --max-time 90 --speed-limit 1000000 --speed-time 5 "
      "-w '%{{http_code}} %{{size_download}} %{{time_total}}' "
      "http://127.0.0.1:PORT/size/{}".format(meta["dl_size"]))
    w("curl -sS -T /dev/shm/spliced-bench-upload.PID -H 'Expect:' -o BODY --max-time 90 "
      "--speed-limit 1000000 --speed-time 5 -w '%{{http_code}} %{{size_upload}} "
      "%{{time_total}}' http://127.0.0.1:PORT/upload   # {} MiB; BODY must be its sha256".format(
          up_mib))
    w("taskset -a -p -c 0 ORIGIN_AND_PROXY_PIDS   # one CPU variant only, undone afterwards")
    w("taskset -c 0 pingpong 127.0.0.1 PORT / {0} {1}   # tools/bench/pingpong.c, one CPU".format(
        meta["pp_count"], meta["pp_warmup"]))
    w("pingpong 127.0.0.1 PORT / {0} {1}                # free scheduling".format(
        meta["pp_count"], meta["pp_warmup"]))
    w("taskset -c 0 pingpong 127.0.0.1 PORT /ws {0} {1} {2}   # tunnel (WebSocket upgrade), "
      "one CPU".format(meta["pp_count"], meta["pp_warmup"], meta.get("tunnel_bytes", "?")))
    w("pingpong 127.0.0.1 PORT /ws {0} {1} {2}                # tunnel, free scheduling".format(
        meta["pp_count"], meta["pp_warmup"], meta.get("tunnel_bytes", "?")))
    w("{} http://127.0.0.1:PORT/".format(wrk))
    w("{} -H 'Connection: close' http://127.0.0.1:PORT/".format(wrk))
    w("```")
    w("")
    w("A transfer counts as failed (and is left out of the median) when the status is not "
      "200, the size is wrong, the upload answer does not carry the file's sha256, or curl "
      "aborts it: `--speed-limit 1000000 --speed-time 5` turns a stalled transfer into a "
      "failure after about 5 s instead of a hang.")
    w("")
    w("GB/s is 10^9 bytes per second as reported by curl (`size / time_total`). "
      "wrk errors are its socket errors (connect, read, write, timeout) plus non-2xx "
      "responses.")
    w("")
    for name, lang in (("haproxy.cfg", ""), ("nginx.conf", "nginx"), ("spliced.conf", ""),
                       ("spliced-nosplice.conf", "")):
        path = os.path.join(tmp, "conf", name)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            text = f.read().replace(tmp, "$TMP")
        w("<details><summary>{}</summary>".format(name))
        w("")
        w("```" + lang)
        w(text.rstrip())
        w("```")
        w("")
        w("</details>")
        w("")

    # ---- environment ----
    w("## Machine and versions")
    w("")
    w("| | |")
    w("|---|---|")
    for key, label in (("date", "date"), ("nproc", "nproc"), ("cpu_model", "CPU"),
                       ("mem", "memory"), ("kernel", "kernel"), ("os", "OS"),
                       ("sysctl", "sysctls"), ("load_start", "load average at start"),
                       ("load_end", "load average at end"),
                       ("busy_start", "CPU busy before (script idle)"),
                       ("busy_end", "CPU busy after (script idle)"), ("git", "source tree at start"),
                       ("spliced_built", "spliced binary (.output/spliced) built"),
                       ("spliced_version", "spliced"), ("spliced_sha", "spliced binary sha256"),
                       ("haproxy_version", "HAProxy"), ("nginx_version", "nginx"),
                       ("wrk_version", "wrk"), ("curl_version", "curl"),
                       ("cc_version", "cc (pingpong)"), ("python_version", "python")):
        w("| {} | {} |".format(label, meta.get(key, "?").replace("|", "\\|")))
    w("")

    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(o))
    return 0


if __name__ == "__main__":
    sys.exit(main())
