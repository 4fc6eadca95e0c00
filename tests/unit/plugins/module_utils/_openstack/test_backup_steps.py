# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup steps: the copy mode choice."""

from __future__ import annotations

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import backup_steps
from ansible_collections.openstack_dr.bank.tests.unit.plugins.module_utils._openstack.fakes import resource


@pytest.mark.parametrize("status, asked, force, expected", [
    ("available", "auto", False, "direct"),
    ("in-use", "auto", True, "snapshot"),
    ("available", "snapshot", False, "snapshot"),
    ("available", "direct", False, "direct"),
])
def test_copy_mode_choice(status, asked, force, expected):
    assert backup_steps.choose_copy_mode(resource(id="v", status=status), asked, force) == expected


def test_direct_copy_of_an_attached_volume_is_refused():
    with pytest.raises(InvalidInputError, match="direct needs a detached"):
        backup_steps.choose_copy_mode(resource(id="v", status="in-use"), "direct", True)


def test_snapshot_of_an_attached_volume_needs_force():
    with pytest.raises(InvalidInputError, match="force"):
        backup_steps.choose_copy_mode(resource(id="v", status="in-use"), "auto", False)
