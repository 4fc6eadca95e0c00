# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The file bank: atomic writes, key order, staying inside its root, absent objects."""

from __future__ import annotations

import os

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.file import TEMP_PREFIX, FileBank
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, BankObjectNotFoundError, InvalidInputError


def test_writes_leave_no_temporary_files(tmp_path) -> None:
    bank = FileBank(str(tmp_path), create=True)
    bank.put("a/b", b"1")
    bank.put("a/b", b"22")
    assert os.listdir(tmp_path / "a") == ["b"]
    assert bank.get("a/b") == b"22"


def test_failed_write_keeps_the_old_object_and_no_temporary(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    bank = FileBank(str(tmp_path), create=True)
    bank.put("k", b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(BankError, match="No space left on device") as info:
        bank.put("k", b"new")
    assert str(tmp_path) in str(info.value) and "'k'" in str(info.value)
    monkeypatch.undo()
    assert bank.get("k") == b"old"
    assert sorted(os.listdir(tmp_path)) == ["k"]


def test_listing_skips_temporaries_and_sorts_like_object_stores(tmp_path) -> None:
    bank = FileBank(str(tmp_path), create=True)
    for key in ("a/b", "a-c", "a0", "a/a/z"):
        bank.put(key, b"x")
    (tmp_path / "a" / (TEMP_PREFIX + "crashed")).write_bytes(b"partial")
    assert [o.key for o in bank.list()] == ["a-c", "a/a/z", "a/b", "a0"]


def test_keys_may_not_name_temporaries(tmp_path) -> None:
    bank = FileBank(str(tmp_path), create=True)
    with pytest.raises(InvalidInputError):
        bank.put(f"a/{TEMP_PREFIX}x", b"x")


def test_symlinked_directory_cannot_lead_outside(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "bank"
    bank = FileBank(str(root), create=True)
    os.symlink(outside, root / "link")
    with pytest.raises(InvalidInputError, match="outside the bank"):
        bank.put("link/x", b"x")
    assert not os.listdir(outside)


def test_missing_directory_is_an_error_unless_created(tmp_path) -> None:
    with pytest.raises(BankError, match="does not exist"):
        FileBank(str(tmp_path / "nope"))
    FileBank(str(tmp_path / "nope"), create=True)
    assert (tmp_path / "nope").is_dir()


def test_an_absent_object_is_not_found_and_absent_keys_delete_quietly(tmp_path) -> None:
    bank = FileBank(str(tmp_path), create=True)
    assert not bank.exists("chunks/aa")
    with pytest.raises(BankObjectNotFoundError, match=r"key 'chunks/aa': no such object"):
        bank.get("chunks/aa")
    assert bank.delete_many(["chunks/aa"]) == 1


def test_the_prefix_is_a_subdirectory(tmp_path) -> None:
    bank = FileBank(str(tmp_path), create=True, prefix="site-a/")
    bank.put("k", b"v")
    assert (tmp_path / "site-a" / "k").read_bytes() == b"v"
    assert bank.description == f"file bank {tmp_path / 'site-a'}"
