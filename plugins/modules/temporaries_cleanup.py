#!/usr/bin/python
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: temporaries_cleanup
short_description: Remove the temporary snapshots, volumes and images that interrupted runs left at a site
version_added: 0.1.0
description:
  - Finds the temporaries that M(openstack_dr.bank.volume_glance_backup) and
    M(openstack_dr.bank.volume_glance_restore) create at a site by their tags (the metadata or properties
    C(openstack_dr_bank_temporary), C(openstack_dr_bank_run), C(openstack_dr_bank_backup) and
    C(openstack_dr_bank_source_volume)), and removes them image first, then volume, then snapshot,
    waiting for each removal.
  - A run that ends normally removes its own temporaries; this module is for those a crash, a killed
    C(async) job or a lost connection left behind.
  - Only what the project's credentials can see is found; run it with the same cloud the backups and restores use.
  - A restore image kept as the parent of the restored volume (Ceph clones a raw restore image; see
    RV(openstack_dr.bank.volume_glance_restore#module:parent_image)) is left alone while that volume exists and
    removed by the first run after the volume is deleted.
  - Fails when a temporary could not be removed, naming it by type and id.
author:
  - openstack_dr.bank contributors (@openstack-dr)
extends_documentation_fragment:
  - openstack_dr.bank._attributes
  - openstack_dr.bank._openstack
attributes:
  check_mode:
    support: full
    details: Reports the temporaries that would be removed in RV(found); removes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Once the temporaries are gone, a second run finds nothing and gives RV(ignore:changed=false).
options:
  backups:
    description:
      - Only the temporaries of backups of these names (the C(openstack_dr_bank_backup) tag); all when empty.
      - Temporaries of a restore carry the name of the backup being restored.
    type: list
    elements: str
    default: []
  drill_run_id:
    description:
      - Also remove the volumes that a DR drill restored and marked with the metadata
        C(openstack_dr_bank_drill) set to this value (the C(openstack_dr.bank.dr_drill) playbook does).
      - Volumes without that mark are never touched by this option.
    type: str
  older_than:
    description:
      - Only temporaries created at least this many seconds ago, so a cleanup never races a run in progress.
      - From V(0) to V(315360000) (ten years); all, whatever their age, when not set.
    type: int
  run_id:
    description:
      - Only the temporaries of this run (the C(openstack_dr_bank_run) tag).
    type: str
  source_volumes:
    description:
      - Only the temporaries made from these source volume ids (the C(openstack_dr_bank_source_volume) tag); all when empty.
    type: list
    elements: str
    default: []
notes:
  - O(timeout) is the deadline of each removal.
seealso:
  - module: openstack_dr.bank.volume_glance_backup
  - module: openstack_dr.bank.volume_glance_restore
"""

EXAMPLES = r"""
- name: Remove what crashed runs left at site A more than an hour ago
  openstack_dr.bank.temporaries_cleanup:
    cloud: site-a
    older_than: 3600

- name: Remove the volumes a DR drill restored, with the temporaries its restores left
  openstack_dr.bank.temporaries_cleanup:
    cloud: site-b
    drill_run_id: "{{ drill_run_id }}"

- name: Show the temporaries of two backups, removing nothing
  openstack_dr.bank.temporaries_cleanup:
    cloud: site-a
    backups:
      - database-data-2026-11-25
      - web-root-2026-11-25
  check_mode: true
  register: leftovers
"""

RETURN = r"""
found:
  description: The temporaries found (in check mode, those that would be removed), in removal order.
  returned: always
  type: list
  elements: dict
  contains:
    type:
      description: V(image), V(volume) or V(snapshot).
      type: str
    id:
      description: Id of the resource.
      type: str
    name:
      description: Name of the resource.
      type: str
    status:
      description: Status of the resource when found.
      type: str
    run:
      description: Run id tag.
      type: str
    backup:
      description: Backup name tag.
      type: str
    source_volume:
      description: Source volume id tag.
      type: str
    made_from:
      description:
        - For a volume cloned from a snapshot, the snapshot's id; that snapshot is only removed after the volume.
      type: str
    parent_of:
      description:
        - For a restore image kept as the parent of the volume cloned from it (Ceph; RV(openstack_dr.bank.volume_glance_restore#module:parent_image)),
          that volume's id. Such an image is only found once its volume is gone, or with O(drill_run_id) when the
          volume is one of the drill's, which is removed first.
      type: str
removed:
  description: The temporaries removed (type, id, name); empty in check mode.
  returned: always
  type: list
  elements: dict
left_behind:
  description: The temporaries that could not be removed (type, id, name, error).
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import openstack_argument_spec, openstack_secrets
from ansible_collections.openstack_dr.bank.plugins.module_utils._runner import run_module
from ansible_collections.openstack_dr.bank.plugins.module_utils._temporaries_cleanup import run_temporaries_cleanup


def argument_spec() -> dict:
    return dict(
        openstack_argument_spec(),
        backups=dict(type="list", elements="str", default=[]),
        drill_run_id=dict(type="str"),
        older_than=dict(type="int"),
        run_id=dict(type="str"),
        source_volumes=dict(type="list", elements="str", default=[]),
    )


def main() -> None:
    run_module(argument_spec(), run_temporaries_cleanup, secrets=openstack_secrets)


if __name__ == "__main__":
    main()
