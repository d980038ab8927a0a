#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""conf_seeds.py - write the configuration texts found in the tests into tests/fuzz/corpus/conf,
the seed corpus of fuzz_conf.

  tests/fuzz/conf_seeds.py [OUTDIR]

Sources:
  - tests/e2e/*.bats: every double-quoted shell string that starts with "global ", "listener "
    or "pool " and holds a block, and every here-document that holds a listener or a pool; shell
    expansions become fixed values (ports, paths, "x");
  - tests/unit/*.c: every run of adjacent C string literals (and the BASE macro of test_conf.c)
    that holds a block or a statement;
  - tools/demo/spliced.conf, the sample configuration.
Each text is one file named seed-<first 12 hex digits of its SHA-256>; existing seed-* files
are replaced, so rerunning after the tests change keeps the directory in step.
"""
import glob
import hashlib
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def shell_values(text):
    """replace shell expansions in a config text by fixed, plausible values"""
    ports = {}

    def port(name):
        return str(ports.setdefault(name, 18081 + len(ports)))

    text = text.replace("@PORT@", "18000").replace("@PORT2@", "18001")
    text = re.sub(r"\$\{ORIGIN_PORTS\[([^]]*)\]\}", lambda m: port(m.group(1)), text)
    text = re.sub(r"\$\{?(ORIGIN_PORT|SPLICED_PORT|PORT\w*|\w*_PORT\w*|\w*port\w*)\}?",
                  lambda m: port(m.group(1)), text)
    text = re.sub(r"\$\((free_port)\)", lambda m: port(m.group(0)), text)
    text = re.sub(r"\$\([^()]*\)", "x", text)
    text = re.sub(r"\$\{?(\w*(TMP|DIR|PATH|LOG|PIN|SOCK|CERT|KEY|CA|FILE)\w*)\}?",
                  "/tmp/spliced-fuzz", text)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "x", text)
    return text.replace('\\"', '"').replace("\\$", "$").replace("\\`", "`").replace("\\\\", "\\")


def from_bats(path):
    src = open(path, encoding="utf-8").read()
    out = []
    for m in re.finditer(r'"(?=(global|listener|pool)[ \t])', src):
        i, buf = m.end(), []
        while i < len(src) and src[i] != '"':
            if src[i] == "\\" and i + 1 < len(src):
                buf.append(src[i:i + 2])
                i += 2
                continue
            buf.append(src[i])
            i += 1
        text = "".join(buf)
        if "{" in text:
            out.append(shell_values(text) + "\n")
    for m in re.finditer(r"<<-?\s*'?(\w+)'?[^\n]*\n(.*?)\n\s*\1\n", src, re.S):
        body = m.group(2)
        if re.search(r"(^|\s)(listener|pool)\s+\S+\s*\{", body):
            out.append(shell_values(body) + "\n")
    return out


C_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "a": "\a",
         "b": "\b", "f": "\f", "v": "\v"}


def c_string(body):
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            e = body[i + 1]
            if e == "x":
                m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2:])
                out.append(chr(int(m.group(0), 16)))
                i += 2 + len(m.group(0))
                continue
            out.append(C_ESC.get(e, e))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def from_c(path):
    src = open(path, encoding="utf-8").read()
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    src = re.sub(r"//[^\n]*", " ", src)
    macros = {}
    for m in re.finditer(r'#define\s+(\w+)[\s\\]+((?:"(?:[^"\\\n]|\\.)*"[ \t]*(?:\\\n\s*)?)+)', src):
        macros[m.group(1)] = "".join(c_string(s) for s in
                                     re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(2)))
    src = re.sub(r"#define[^\n]*(\\\n[^\n]*)*", " ", src)
    token = re.compile(r'"((?:[^"\\\n]|\\.)*)"|(\w+)|(\s+)|(.)', re.S)
    out, run, in_run = [], [], False
    for m in token.finditer(src):
        lit, word, space = m.group(1), m.group(2), m.group(3)
        if lit is not None:
            run.append(c_string(lit))
            in_run = True
        elif word is not None and word in macros:
            run.append(macros[word])
            in_run = True
        elif space is not None:
            continue
        else:
            if run:
                out.append("".join(run))
            run, in_run = [], False
    if run:
        out.append("".join(run))
    return [t for t in out if len(t) > 8 and ("{" in t or ";" in t) and "\0" not in t and
            re.search(r"(^|[\s{;])(global|listener|pool|route|server|bind)\b", t)]


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests/fuzz/corpus/conf")
    texts = []
    for f in sorted(glob.glob(os.path.join(ROOT, "tests/e2e/*.bats"))):
        texts += from_bats(f)
    for f in sorted(glob.glob(os.path.join(ROOT, "tests/unit/*.c"))):
        texts += from_c(f)
    texts.append(open(os.path.join(ROOT, "tools/demo/spliced.conf"), encoding="utf-8").read())
    os.makedirs(outdir, exist_ok=True)
    for old in glob.glob(os.path.join(outdir, "seed-*")):
        os.unlink(old)
    names = set()
    for t in texts:
        data = t.encode("utf-8")
        name = "seed-" + hashlib.sha256(data).hexdigest()[:12]
        if name in names:
            continue
        names.add(name)
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
    print(f"{len(names)} configurations ({len(texts)} found) in {outdir}")


if __name__ == "__main__":
    main()
