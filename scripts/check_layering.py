#!/usr/bin/env python3
"""The include direction of the modules (docs/architecture.md): conf <- tls <- proxy <-
gateway, metrics below proxy; proxy/codec is pure (no libevent, nothing of ours but
itself). Prints every include that points the wrong way and exits 1 if there is one.

  scripts/check_layering.py [source root]
"""

import os
import re
import sys

# What each folder may include from the project (longest prefix wins).
ALLOWED = {
    "conf": {"conf"},
    "metrics": {"metrics", "conf"},
    "tls": {"tls", "conf"},
    "proxy": {"proxy", "tls", "metrics", "conf"},
    "proxy/codec": {"proxy/codec"},
    "gateway": {"gateway", "proxy", "tls", "metrics", "conf"},
}
# System headers a pure codec must not use (I/O and event loops).
CODEC_FORBIDDEN = re.compile(r"#include <(event2/|sys/socket|netinet/|unistd)")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(path):
    best = None
    for m in ALLOWED:
        if path == m or path.startswith(m + "/"):
            if best is None or len(m) > len(best):
                best = m
    return best


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    problems = []
    checked = 0
    for top in ("conf", "metrics", "tls", "proxy", "gateway"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in names:
                if not name.endswith((".h", ".cc")):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root)
                mod = module_of(os.path.dirname(rel))
                text = open(full, encoding="utf-8").read()
                checked += 1
                for inc in INCLUDE.findall(text):
                    target = module_of(os.path.dirname(inc))
                    if target is None:
                        continue  # not one of ours (e.g. a generated or third-party header)
                    if not any(target == a or target.startswith(a + "/") for a in ALLOWED[mod]):
                        problems.append(f"{rel}: includes {inc} ({mod} may not depend on {target})")
                if mod == "proxy/codec":
                    for m in CODEC_FORBIDDEN.finditer(text):
                        problems.append(f"{rel}: {m.group(0)} (proxy/codec does no I/O)")
    for p in problems:
        print(p)
    print(f"{checked} files checked, {len(problems)} wrong-way includes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
