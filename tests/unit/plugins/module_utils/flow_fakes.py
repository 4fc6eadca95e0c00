# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module stand-in and an in-memory bank for the unit tests of the bank flows."""

from __future__ import annotations

import types

from ._engine.memory_bank import MemoryBank


def memory_bank_for(monkeypatch, flow) -> MemoryBank:
    """An in-memory bank that ``flow`` opens whatever its bank option says."""
    bank = MemoryBank()
    monkeypatch.setattr(flow, "open_bank", lambda config, read_only=False: bank)
    return bank


def module(check_mode: bool = False, **params) -> types.SimpleNamespace:
    defaults = {"bank": {}, "encryption_passphrase": None, "backup": None, "source_volume": None, "verify": "none",
                "verify_percent": 100.0, "prune": False, "lock_timeout": 5}
    return types.SimpleNamespace(params=dict(defaults, **params), check_mode=check_mode)
