"""Which malloc the training process runs on: jemalloc when the system has it.

glibc keeps the freed blocks of each step's differently shaped packed batches; on the demo's
135M model at batch 4 × 512 tokens its peak RSS was 6.2 GB against 4.3 GB under jemalloc, at
the same tokens/s (BENCHMARKS.md, issue 16). An allocator is chosen when a process starts, so
`ollama-tune run` sets LD_PRELOAD for the training process it spawns.
`OLLAMA_TUNE_ALLOCATOR=system` keeps the system's malloc. A smaller oneDNN kernel cache took
another 0.4 GB off that peak (3.9 GB).
"""

from __future__ import annotations

import ctypes.util
import glob
import os
import sys
from pathlib import Path

ENV = "OLLAMA_TUNE_ALLOCATOR"
# oneDNN's cache of compiled kernels (default 1,024 shapes): 64 holds one step's shapes, so a
# step's layers reuse them, and it grew 7 instead of 15 MB per step, at the same tokens/s.
ONEDNN_CACHE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
ONEDNN_CACHE_SIZE = 64
# Debian/Ubuntu (libjemalloc2), Fedora/RHEL (jemalloc), a source build.
_PATTERNS = (
    "/usr/lib/*-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
)


def find_jemalloc() -> str | None:
    """A loadable libjemalloc (path, or a soname the dynamic linker finds), else None."""
    for pattern in _PATTERNS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return ctypes.util.find_library("jemalloc")


def training_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables to add for a training child (a value the user set is kept)."""
    environ = dict(os.environ if environ is None else environ)
    extra = {}
    if ONEDNN_CACHE not in environ:
        # oneDNN keeps kernels per matmul shape; packed batches make new shapes every step.
        extra[ONEDNN_CACHE] = str(ONEDNN_CACHE_SIZE)
    preload = environ.get("LD_PRELOAD", "")
    if sys.platform != "linux" or environ.get(ENV, "auto") == "system" or "jemalloc" in preload:
        return extra
    lib = find_jemalloc()
    if lib is not None:
        extra["LD_PRELOAD"] = f"{lib} {preload}".strip()
    return extra


def current() -> str:
    """The allocator this process runs on, from its memory map (run.json records it)."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "system"
    return "jemalloc" if "libjemalloc" in maps else "system"
