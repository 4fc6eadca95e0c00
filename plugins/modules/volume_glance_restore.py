#!/usr/bin/python
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_glance_restore
short_description: Restore a Cinder volume from a bank through Glance
version_added: 0.1.0
description:
  - Streams a backup's chunks from the bank into a new private Glance image, verifying each chunk before
    any of its bytes is sent and the whole image's hash before the last, creates a volume from the image,
    waits until it is available, restores its bootable flag and image metadata, and removes the image.
  - Needs only the bank and the target cloud; nothing of the site where the backup was made.
  - A failed restore removes its image and its half-made volume. Both are tagged while they are
    temporary, so a crash leaves them findable by the cleanup role.
  - The restored volume carries the metadata key C(openstack_dr_bank_restored_from) with the backup id, so a
    second run finds it and reports RV(ignore:changed=false).
author:
  - openstack_dr.bank contributors (@openstack-dr)
extends_documentation_fragment:
  - openstack_dr.bank._attributes
  - openstack_dr.bank._openstack
  - openstack_dr.bank._bank
attributes:
  check_mode:
    support: full
    details: Checks the backup, the name, the size and the volume type, and reports the volume that would be created.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A volume named O(restore_name) restored from the same backup gives RV(ignore:changed=false).
options:
  availability_zone:
    description:
      - Availability zone of the new volume; by default the target's default.
    type: str
  backup:
    description:
      - Name or id of the backup to restore.
    type: str
    required: true
  description:
    description:
      - Description of the new volume, at most 255 characters.
    type: str
  metadata:
    description:
      - Metadata of the new volume, added to the source volume's metadata kept in the backup.
      - Keys of 1 to 255 characters and values of at most 255 (Cinder's limits); keys starting with
        C(openstack_dr_bank_) are set by this collection and refused.
    type: dict
    default: {}
  parallelism:
    description:
      - Chunks fetched from the bank ahead of the upload, from V(1) to V(64).
    type: int
    default: 4
  restore_name:
    description:
      - Name of the new volume. A volume of that name that was not restored from this backup is an error.
      - A volume of that name that an interrupted restore of this backup left unfinished is completed when
        Cinder filled it from that run's verified image (bootable flag, image metadata, tags), and otherwise
        removed and restored again; RV(earlier_restore) says which. Only a complete volume (available, no
        temporary tag, with the restore's completion mark) counts as already restored.
      - Cinder's rules for names; 1 to 255 characters, no control characters, no leading or trailing whitespace,
        and no character outside the Basic Multilingual Plane (4-byte UTF-8, such as emoji).
    type: str
    required: true
  size:
    description:
      - Size of the new volume in GiB; at least the size of the backed up volume, which is the default,
        and at most V(1048576). A size below the backup's is refused before anything is created.
    type: int
  temporary_prefix:
    description:
      - Prefix of the name of the temporary image; 1 to 64 printable characters, without a slash or backslash.
    type: str
    default: dr-bank-tmp-
  transfer_format:
    description:
      - The image format in which the backup crosses Glance.
      - V(raw) uploads every byte of the volume, zeros included.
      - V(qcow2) generates, from the manifest alone, a qcow2 image that holds only the 64 KiB clusters
        with data (zero clusters inside non-zero chunks are skipped too); its size is known before the
        upload. Cinder downloads the image into its C(image_conversion_dir) (room for the image is needed
        there) and converts it into the volume with C(qemu-img).
      - V(auto) picks V(qcow2) when this Glance accepts it and V(raw) otherwise; RV(transfer_format) says which and why.
      - V(auto) picks V(raw) instead where Glance keeps new images in Ceph RBD and the clusters with data make at least a third of
        the volume. Cinder's RBD driver then makes the volume a copy-on-write clone of the image in seconds, where it would
        download and convert a qcow2 (at 4 GiB with half of it data, 56 s against 111 s on the test cloud). The image stays as
        the volume's parent (see RV(parent_image)). Glance shows its stores' types to admins only (C(GET /v2/info/stores/detail)),
        so for other users V(auto) keeps V(qcow2) and its reason says so; give V(raw) at an RBD site to get the clone.
        Where Glance is on Ceph but the volume type's backend is not, a raw image is copied, not cloned; give V(qcow2) there.
    type: str
    default: auto
    choices: [auto, raw, qcow2]
  volume_type:
    description:
      - Volume type of the new volume.
      - By default the source volume's type when a type of that name exists at the target, else the
        target's default type; RV(volume_type_reason) says which.
    type: str
notes:
  - The image upload and the creation of the volume each have a deadline of O(timeout) seconds, raised to
    60 seconds per GiB of the volume.
seealso:
  - module: openstack_dr.bank.volume_glance_backup
  - module: openstack_dr.bank.bank_backup_info
"""

EXAMPLES = r"""
- name: Restore the latest database backup at site B
  openstack_dr.bank.volume_glance_restore:
    cloud: site-b
    backup: database-data-2026-11-25
    restore_name: database-data
    volume_type: ssd
    bank:
      type: s3
      endpoint_url: https://s3.example.com
      bucket: dr-bank
      access_key: "{{ bank_access_key }}"
      secret_key: "{{ bank_secret_key }}"
    encryption_passphrase: "{{ vault_bank_passphrase }}"
  register: restored

- name: Show the new volume id
  ansible.builtin.debug:
    msg: "{{ restored.volume.id }}"
"""

RETURN = r"""
volume:
  description:
    - The restored volume, as openstack.cloud returns volumes. In check mode, the volume that would be created.
  returned: always
  type: dict
  sample: {"id": "5a9e8a1c-8b65-4f4e-9a8f-3d0d1f2d9e11", "name": "database-data", "size": 10, "status": "available"}
image_id:
  description: Id of the temporary image the volume was created from (removed by now, unless RV(parent_image) names it);
    null when nothing was done.
  returned: always
  type: str
parent_image:
  description:
    - Set when Glance could not delete the restore image because the cloud made the volume as its copy-on-write
      clone (Cinder on Ceph clones a raw image; a restore through qcow2, which Cinder converts, leaves no
      parent). The image then lives as long as the volume; it keeps its temporary tags and the property
      C(openstack_dr_bank_parent_of) naming the volume, M(openstack_dr.bank.temporaries_cleanup) leaves it
      while the volume exists and removes it after. A warning says so too.
    - Null otherwise.
  returned: when a volume was restored
  type: dict
  contains:
    id:
      description: The image's id.
      type: str
    parent_of:
      description: Id of the restored volume cloned from it.
      type: str
backup:
  description:
    - The restored backup, in the same shape as M(openstack_dr.bank.volume_glance_backup) returns it
      (id, name, description, created_at, completed_at, protected_until, size, stored_bytes, hashes, source_volume, source_cloud).
  returned: always
  type: dict
transfer_format:
  description: The image format the backup crossed Glance in (or would, in check mode), and why.
  returned: changed
  type: dict
  sample: {"format": "qcow2", "reason": "auto: qcow2, the fastest sparse format this Glance accepts"}
earlier_restore:
  description:
    - The volume of that name that an earlier restore of this backup made, when there is one.
  returned: when such a volume was found
  type: dict
  contains:
    volume_id:
      description: Its id.
      type: str
    status:
      description: Its status when found.
      type: str
    complete:
      description: Whether it was complete (then nothing is done and RV(ignore:changed) is false).
      type: bool
    outcome:
      description: V(found) (complete, or in check mode), V(completed), or V(removed and restored again).
      type: str
volume_type_reason:
  description: Why the volume got its volume type.
  returned: always
  type: str
  sample: volume type gold of the source volume, which exists here
image_metadata:
  description: Image metadata keys set on the volume, skipped (managed by Glance or Cinder) and removed.
  returned: changed and not check mode
  type: dict
stats:
  description: Figures of the restore; empty when nothing was done.
  returned: always
  type: dict
  contains:
    bytes:
      description: Bytes of the restored volume image (the backup's size).
      type: int
    seconds:
      description: Seconds of the whole restore, the sum of RV(stats.seconds_per_phase).
      type: float
    seconds_per_phase:
      description:
        - Seconds of each phase, C(prepare) (opening the bank, finding the backup, connecting, checking the name
          and type), C(image_upload) (streaming the verified chunks into the private image until
          Glance has it active), C(volume_from_image) (Cinder creating the volume until it is available)
          and C(finishing) (bootable flag, image metadata, tags, removal of the image).
      type: dict
      sample: {"prepare": 1.2, "image_upload": 11.2, "volume_from_image": 17.4, "finishing": 1.1}
    mib_per_second:
      description: MiB of the volume per second of the C(image_upload) phase.
      type: float
    glance:
      description: What crossed Glance, C(transfer_format) and C(bytes_uploaded) (bytes of the image sent to Glance).
      type: dict
      sample: {"transfer_format": "qcow2", "bytes_uploaded": 2148466688}
    requests:
      description:
        - Bank requests the restore made, by kind (C(get), C(head), C(put), C(list) pages, C(delete), C(lock)), counted as
          a backup counts its own.
        - One C(get) for each chunk of the backup that holds data (all-zero chunks are never stored, so never read), and
          a few more for the bank configuration and the manifest. A restore only reads, so C(put), C(delete) and
          C(lock) stay V(0).
      type: dict
      sample: {"get": 259, "head": 0, "put": 0, "list": 1, "delete": 0, "lock": 0}
temporaries:
  description: On failure, the temporaries removed and those left behind (type, id, name, error).
  returned: failed
  type: dict
"""

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_argument_spec, bank_secrets
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import openstack_argument_spec, openstack_secrets
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.tags import DEFAULT_PREFIX
from ansible_collections.openstack_dr.bank.plugins.module_utils._runner import run_module
from ansible_collections.openstack_dr.bank.plugins.module_utils._volume_restore import run_volume_restore


def argument_spec() -> dict:
    return dict(
        openstack_argument_spec(),
        **bank_argument_spec(),
        availability_zone=dict(type="str"),
        backup=dict(type="str", required=True),
        description=dict(type="str"),
        metadata=dict(type="dict", default={}),
        parallelism=dict(type="int", default=4),
        restore_name=dict(type="str", required=True),
        size=dict(type="int"),
        temporary_prefix=dict(type="str", default=DEFAULT_PREFIX),
        transfer_format=dict(type="str", default="auto", choices=["auto", "raw", "qcow2"]),
        volume_type=dict(type="str"),
    )


def main() -> None:
    run_module(argument_spec(), run_volume_restore, secrets=lambda params: bank_secrets(params) | openstack_secrets(params))


if __name__ == "__main__":
    main()
