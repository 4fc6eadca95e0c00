# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The malloc arena limit: applied on glibc, a no-op elsewhere, once per process."""

from __future__ import annotations

import platform

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine import malloc_arenas


def test_the_arena_limit_applies_on_glibc_only_and_once(monkeypatch):
    monkeypatch.setattr(malloc_arenas, "_done", [])
    on_glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert malloc_arenas.limit_malloc_arenas() is on_glibc

    def load_again(*args):
        raise AssertionError(f"libc loaded a second time: {args}")

    monkeypatch.setattr(malloc_arenas.ctypes, "CDLL", load_again)
    assert malloc_arenas.limit_malloc_arenas() is on_glibc


def test_a_libc_without_mallopt_is_left_alone(monkeypatch):
    monkeypatch.setattr(malloc_arenas, "_done", [])
    monkeypatch.setattr(malloc_arenas.sys, "platform", "linux")

    class Musl:  # musl's libc has no mallopt
        pass

    monkeypatch.setattr(malloc_arenas.ctypes, "CDLL", lambda *args: Musl())
    assert malloc_arenas.limit_malloc_arenas() is False
