#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Read spliced's pinned BPF maps through `bpftool -j map dump pinned` (BTF-formatted).

  maps.py kern PIN              spliced_kern summed over CPUs:
                                redirect_bytes=N redirect_skbs=N pass_skbs=N drop_skbs=N no_peer=N
  maps.py server PIN NAME       the spliced_servers entry whose server is NAME, every field as
                                key=value (pool=P server=S requests=N ... kern_bytes_down=N)
  maps.py conns PIN             number of spliced_conns entries, then one line per entry
  maps.py socks PIN             the spliced_socks slots that are in use (any non-zero field)

Exit status 2 when bpftool fails (map missing, no permission).
"""

import json
import subprocess
import sys


def dump(pin, name):
    p = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", f"{pin}/{name}"],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        print(f"bpftool map dump pinned {pin}/{name}: {p.stderr.strip()}", file=sys.stderr)
        sys.exit(2)
    return json.loads(p.stdout or "[]")


def fmt(d):
    return " ".join(f"{k}={v}" for k, v in d.items())


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    what, pin = sys.argv[1], sys.argv[2]
    if what == "kern":
        tot = {}
        for e in dump(pin, "spliced_kern"):
            for v in e["formatted"]["values"]:
                for k, n in v["value"].items():
                    tot[k] = tot.get(k, 0) + n
        print(fmt(tot))
        return 0
    if what == "server":
        for e in dump(pin, "spliced_servers"):
            v = e["formatted"]["value"]
            if v.get("server") == sys.argv[3]:
                print(fmt(v))
                return 0
        print(f"no server {sys.argv[3]} in {pin}/spliced_servers", file=sys.stderr)
        return 1
    if what == "conns":
        ents = dump(pin, "spliced_conns")
        print(len(ents))
        for e in ents:
            print(fmt(e["formatted"]["value"]))
        return 0
    if what == "socks":
        n = 0
        for e in dump(pin, "spliced_socks"):
            v = e["formatted"]["value"]
            if any(x for k, x in v.items() if not k.endswith("pad") and isinstance(x, int)):
                n += 1
                print(f"slot={e['formatted']['key']} {fmt(v)}")
        print(f"in_use={n}")
        return 0
    print(f"unknown: {what}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
