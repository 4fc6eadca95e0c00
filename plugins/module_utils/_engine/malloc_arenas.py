# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep glibc from holding freed chunk buffers in one malloc arena per thread.

The engine's threads allocate and free 4 MiB buffers all the time. glibc gives each thread an
arena of its own (up to 8 per core) and keeps freed buffers there, so the peak RSS grew with the
number of threads rather than with the data in flight: 213 MiB at parallelism 8 against 189 MiB
with two arenas, at the same speed (docs/benchmarks.md). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_ARENA_MAX = -8  # from glibc's malloc.h
MALLOC_ARENAS = 2
_done = []


def limit_malloc_arenas() -> bool:
    """Ask glibc for at most MALLOC_ARENAS arenas; call before the engine's threads start. True if applied."""
    if _done:
        return _done[0]
    applied = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            applied = bool(libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS))
        except (OSError, AttributeError):
            applied = False  # not glibc (musl has no mallopt): nothing to tune
    _done.append(applied)
    return applied
