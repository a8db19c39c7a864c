#!/usr/bin/env python3
"""Keeps the cached build directory from filling the disk: cargo never removes
the test binaries of earlier builds, each some hundreds of MB. Removes every
executable in target/debug/deps but the newest of each name, and the
incremental cache (CI builds with CARGO_INCREMENTAL=0). Usage:
prune-target.py <CARGO_TARGET_DIR>. A missing file is rebuilt by cargo."""
import collections
import os
import shutil
import sys

target = sys.argv[1]
shutil.rmtree(os.path.join(target, "debug", "incremental"), ignore_errors=True)
deps = os.path.join(target, "debug", "deps")
if not os.path.isdir(deps):
    sys.exit(0)
groups = collections.defaultdict(list)
for name in os.listdir(deps):
    path = os.path.join(deps, name)
    if "." in name or not os.path.isfile(path) or not os.access(path, os.X_OK):
        continue
    groups[name.rsplit("-", 1)[0]].append((os.path.getmtime(path), path))
freed = 0
for items in groups.values():
    items.sort()
    for _, path in items[:-1]:
        freed += os.path.getsize(path)
        os.remove(path)
        if os.path.exists(path + ".d"):
            os.remove(path + ".d")
print(f"pruned {freed / 1e9:.1f} GB of stale test binaries")
