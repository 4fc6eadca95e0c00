#!/usr/bin/python
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bank_delete
short_description: Delete a backup from a bank
version_added: 0.1.0
description:
  - Removes the backup's manifest first (so an interrupted deletion never leaves a backup that looks
    complete), then every chunk that no other complete backup references, then the backup's
    in-progress objects.
  - Holds the bank exclusively while it works, and waits for running backups to finish first, so it
    never removes a chunk that a backup being written at that moment relies on.
  - With O(prune=true), also removes what backups that never completed left in the bank, that is every
    chunk that no complete backup references (uploaded by a failed backup that was not resumed, or by an
    incomplete backup deleted with O(backup)) and every in-progress object. A backup that failed can
    still be run again afterwards; it then uploads its chunks anew.
  - Needs no OpenStack cloud, only the bank.
author:
  - openstack_dr.bank contributors (@openstack-dr)
extends_documentation_fragment:
  - openstack_dr.bank._attributes
  - openstack_dr.bank._bank
attributes:
  check_mode:
    support: full
    details: Reports the objects and bytes that would be removed (deleted and pruned).
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A backup that is already gone, and a bank with nothing to prune, give RV(ignore:changed=false).
options:
  backup:
    description:
      - Name or id of the backup to delete.
      - Required unless O(prune=true).
    type: str
  lock_timeout:
    description:
      - Seconds to wait for running backups and deletions to finish before giving up with nothing removed.
    type: int
    default: 600
  prune:
    description:
      - Also remove the leftovers of backups that never completed (see the description), that is
        unreferenced chunks and in-progress objects.
      - Waits for running backups, like a deletion; a manifest that cannot be read stops the prune with
        nothing removed.
    type: bool
    default: false
seealso:
  - module: openstack_dr.bank.bank_backup_info
  - module: openstack_dr.bank.volume_glance_backup
"""

EXAMPLES = r"""
- name: Delete an old backup
  openstack_dr.bank.bank_delete:
    backup: database-data-2026-10-01
    bank:
      type: file
      path: /srv/dr-bank

- name: Remove what failed backups left behind (after a retention run, for example)
  openstack_dr.bank.bank_delete:
    prune: true
    bank: "{{ dr_bank }}"

- name: See what deleting a backup would free
  openstack_dr.bank.bank_delete:
    backup: database-data-2026-10-01
    bank: "{{ dr_bank }}"
  check_mode: true
  register: would_free
"""

RETURN = r"""
backup:
  description: Id and name of the backup (the name is null when the backup had no manifest).
  returned: when O(backup) is given
  type: dict
  sample: {"id": "0b7c3f3e-2a57-5d0e-9a43-5b0f8a6f4a11", "name": "database-data-2026-10-01"}
deleted:
  description: What deleting O(backup) removed, or would remove in check mode.
  returned: when O(backup) is given
  type: dict
  contains:
    objects:
      description: Number of bank objects.
      type: int
    chunks:
      description: Number of chunks no other backup referenced.
      type: int
    bytes:
      description: Bytes of those objects in the bank.
      type: int
    keys:
      description: The keys of those objects (the first 1000), manifest first.
      type: list
      elements: str
pruned:
  description: What the prune removed, or would remove in check mode.
  returned: when O(prune=true)
  type: dict
  contains:
    objects:
      description: Number of bank objects.
      type: int
    chunks:
      description: Number of chunks no complete backup referenced.
      type: int
    progress_objects:
      description: Number of in-progress objects of backups that never completed.
      type: int
    bytes:
      description: Bytes of those objects in the bank.
      type: int
    keys:
      description: The keys of those objects (the first 1000), chunks first.
      type: list
      elements: str
"""

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_argument_spec, bank_secrets
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank_delete import run_bank_delete
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import DEFAULT_LOCK_WAIT_TIMEOUT
from ansible_collections.openstack_dr.bank.plugins.module_utils._runner import run_module


def argument_spec() -> dict:
    return dict(
        bank_argument_spec(),
        backup=dict(type="str"),
        lock_timeout=dict(type="int", default=int(DEFAULT_LOCK_WAIT_TIMEOUT)),
        prune=dict(type="bool", default=False),
    )


def main() -> None:
    run_module(argument_spec(), run_bank_delete, secrets=bank_secrets)


if __name__ == "__main__":
    main()
