#!/usr/bin/python
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_info
short_description: List the Cinder volumes of a site by name, id or metadata
version_added: 0.1.0
description:
  - Lists the volumes the project can see, keeping those named or identified in O(volumes) and carrying
    every key and value of O(metadata). With neither, lists them all.
  - Returns an empty list when nothing matches.
  - The C(openstack_dr.bank.volume_backup) role uses it to resolve a metadata selector into volumes.
author:
  - openstack_dr.bank contributors (@openstack-dr)
extends_documentation_fragment:
  - openstack_dr.bank._attributes
  - openstack_dr.bank._openstack
attributes:
  check_mode:
    support: full
    details: Reads only, in check mode too.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  metadata:
    description:
      - Only volumes whose metadata holds every one of these keys with these values (compared as strings).
    type: dict
    default: {}
  volumes:
    description:
      - Only volumes of these names or ids.
    type: list
    elements: str
    default: []
seealso:
  - module: openstack_dr.bank.volume_glance_backup
"""

EXAMPLES = r"""
- name: Find the volumes marked for DR backups
  openstack_dr.bank.volume_info:
    cloud: site-a
    metadata:
      dr_backup: "true"
  register: marked
"""

RETURN = r"""
volumes:
  description: The volumes, sorted by name, as openstack.cloud returns volumes (all their fields; the main ones below).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Volume id.
      type: str
    name:
      description: Volume name.
      type: str
    size:
      description: Size in GiB.
      type: int
    status:
      description: Volume status.
      type: str
    volume_type:
      description: Volume type name.
      type: str
    availability_zone:
      description: Availability zone.
      type: str
    is_bootable:
      description: Whether the volume is bootable.
      type: bool
    metadata:
      description: Volume metadata.
      type: dict
    created_at:
      description: Creation time.
      type: str
"""

from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import openstack_argument_spec, openstack_secrets
from ansible_collections.openstack_dr.bank.plugins.module_utils._runner import run_module
from ansible_collections.openstack_dr.bank.plugins.module_utils._volume_info import run_volume_info


def argument_spec() -> dict:
    return dict(
        openstack_argument_spec(),
        metadata=dict(type="dict", default={}),
        volumes=dict(type="list", elements="str", default=[]),
    )


def main() -> None:
    run_module(argument_spec(), run_volume_info, secrets=openstack_secrets)


if __name__ == "__main__":
    main()
