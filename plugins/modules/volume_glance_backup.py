#!/usr/bin/python
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_glance_backup
short_description: Back up a Cinder volume through Glance into a bank
version_added: 0.1.0
description:
  - Copies a Cinder volume into a temporary Glance image (through a temporary snapshot and a temporary
    volume, or directly), streams the image into the bank in chunks, removes every temporary resource,
    and writes the backup's manifest last. The presence of the manifest means the backup is complete.
  - All-zero chunks are not stored, and a chunk the bank already holds (from any backup) is not uploaded
    again, so a second backup of a slightly changed volume writes little.
  - Every temporary resource is tagged with the run, the backup and the source volume, and is removed
    on success, failure, timeout and SIGTERM. Whatever could not be removed is reported with its id.
  - A run interrupted before the manifest was written is resumed by the next run with the same
    O(backup_name); only the chunks the bank does not have are uploaded.
author:
  - openstack_dr.bank contributors (@openstack-dr)
extends_documentation_fragment:
  - openstack_dr.bank._attributes
  - openstack_dr.bank._openstack
  - openstack_dr.bank._bank
attributes:
  check_mode:
    support: full
    details: Reports the temporaries that would be created and the size that would be read; changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A complete backup with the same O(backup_name) in the bank gives RV(ignore:changed=false).
options:
  backup_name:
    description:
      - Name of the backup in the bank. Names are unique in a bank; the backup id is derived from it.
      - 1 to 255 bytes in UTF-8 of printable characters, without a slash or backslash, without leading or trailing
        whitespace, and no character outside the Basic Multilingual Plane (4-byte UTF-8, such as emoji),
        which Cinder refuses in the names of the temporaries.
      - A name shaped like a backup id (a lowercase UUID) is refused, so names and ids never mix.
    type: str
    required: true
  chunk_size:
    description:
      - Size of the chunks in MiB. Larger chunks mean fewer objects; smaller chunks deduplicate better.
    type: int
    default: 4
    choices: [1, 2, 4, 8, 16, 32, 64]
  compression_level:
    description:
      - zstd compression level from V(1) to V(19). Chunks that do not shrink are stored raw.
    type: int
    default: 3
  copy_mode:
    description:
      - How the volume's data reaches Glance.
      - V(snapshot) creates a temporary snapshot and a temporary volume from it, and uploads that volume.
        The source volume is never touched and may stay in use.
      - V(direct) uploads the volume itself (it must be V(available)); no snapshot and no copy.
      - V(auto) picks V(direct) for an V(available) volume and V(snapshot) otherwise.
    type: str
    default: auto
    choices: [auto, snapshot, direct]
  description:
    description:
      - Free text stored in the manifest.
    type: str
    default: ""
  force:
    description:
      - Allow the snapshot of an V(in-use) volume. The snapshot is crash-consistent.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait while a deletion holds the bank exclusively, from V(0) to V(86400).
      - A lock left by a run whose process is gone from this host is broken at once; one from another host
        when its heartbeat (renewed every 30 s) has stood still for 2 minutes while this run waits, so
        a value below V(120) never breaks a foreign lock. A live run's lock is never broken.
    type: int
    default: 600
  parallelism:
    description:
      - Chunks processed and uploaded at once, from V(1) to V(64). Memory use grows with O(parallelism) x O(chunk_size).
    type: int
    default: 4
  progress_interval:
    description:
      - Seconds between updates of the backup's progress object, which M(openstack_dr.bank.bank_backup_info)
        shows while the backup runs.
      - From V(1) to V(600), below the 15 minutes after which a silent backup is listed as stalled.
    type: int
    default: 30
  temporary_prefix:
    description:
      - Prefix of the names of temporary snapshots, volumes and images.
      - 1 to 64 printable characters, without a slash or backslash.
    type: str
    default: dr-bank-tmp-
  transfer_format:
    description:
      - The image format in which the volume's data crosses Glance.
      - V(raw) moves every byte of the volume, zeros included, as Cinder stores it.
      - V(vdi), V(vmdk) and V(qcow2) ask Cinder's upload-to-image to convert the volume into that sparse
        format, so only allocated data crosses Glance; the image is turned back into the volume's raw
        bytes as it is read, without a copy on local disk, and validated first (no backing file, no
        external data file, no encryption, every offset inside the image). Cinder converts with
        C(qemu-img) into its C(image_conversion_dir), which needs room for the converted image, and
        compresses V(qcow2) when its C(image_compress_on_upload) is on (its default), which is slower.
      - V(auto) picks the fastest sparse format this Glance accepts (V(vdi), then V(vmdk), then V(qcow2))
        and falls back to V(raw) when Glance accepts none or Cinder refuses the conversion;
        RV(transfer_format) says which and why.
      - Whatever the format, the bank holds the same chunks and the manifest the same size and sha256 of
        the raw volume, so backups made through different formats deduplicate against each other.
    type: str
    default: auto
    choices: [auto, raw, vdi, vmdk, qcow2]
  volume:
    description:
      - Name or id of the Cinder volume to back up. It must be V(available) or V(in-use).
    type: str
    required: true
notes:
  - Each waited step (snapshot, temporary volume, upload to image) has its own deadline of O(timeout)
    seconds, raised to 60 seconds per GiB of the volume for steps that move its data. Waits poll at an
    interval of 5 % of the time waited so far (0.5 to 10 seconds), so a step is noticed soon after it ends
    and a 3-hour step costs about 1,150 status calls.
seealso:
  - module: openstack_dr.bank.volume_glance_restore
  - module: openstack_dr.bank.bank_backup_info
  - module: openstack_dr.bank.bank_delete
"""

EXAMPLES = r"""
- name: Back up a volume at site A into an S3 bank
  openstack_dr.bank.volume_glance_backup:
    cloud: site-a
    volume: database-data
    backup_name: database-data-2026-11-25
    bank:
      type: s3
      endpoint_url: https://s3.example.com
      bucket: dr-bank
      access_key: "{{ bank_access_key }}"
      secret_key: "{{ bank_secret_key }}"
    encryption_passphrase: "{{ vault_bank_passphrase }}"

- name: Back up an attached volume through a snapshot, in the background
  openstack_dr.bank.volume_glance_backup:
    cloud: site-a
    volume: 3f1c2c4e-7d55-4c8e-9a0a-1f6f7f0c2b11
    backup_name: web-root-nightly
    copy_mode: snapshot
    force: true
    bank:
      type: swift
      cloud: bank-cloud
      container: dr-bank
  async: 86400
  poll: 0
  register: backup_job
"""

RETURN = r"""
backup:
  description: The backup in the bank.
  returned: always
  type: dict
  contains:
    id:
      description: Backup id (derived from the name).
      type: str
      sample: 5f0c8c1e-8d1d-5b8e-9d2a-0f3b7a8c9d10
    name:
      description: Backup name.
      type: str
      sample: database-data-2026-11-25
    description:
      description: Description stored with the backup.
      type: str
      returned: success
    created_at:
      description: When the backup started, UTC, ISO 8601.
      type: str
      returned: success
    completed_at:
      description: When its chunks were all stored, UTC, ISO 8601.
      type: str
      returned: success
    protected_until:
      description:
        - With O(bank.object_lock_days), the date (UTC) until which every chunk and the manifest of the backup are locked
          (S3 Object Lock); reused chunks locked for less were extended before the manifest was written. Null otherwise.
      type: str
      returned: success
    size:
      description: Bytes of the volume image; in check mode the size that would be read.
      type: int
    stored_bytes:
      description: Bytes this backup wrote into the bank when it was made.
      type: int
      returned: success
    hashes:
      description: Whole-image hashes, hex (V(sha256) and Glance's C(os_hash_algo), usually V(sha512)).
      type: dict
      returned: success
    source_volume:
      description: Id, name, size (GiB), volume type, bootable flag and availability zone of the source volume.
      type: dict
    source_cloud:
      description: Cloud and region of the source volume.
      type: dict
      returned: success
copy_mode:
  description: The copy mode used (or that would be used in check mode).
  returned: changed
  type: str
  sample: direct
transfer_format:
  description: The image format the volume crossed Glance in (or would, in check mode), and why.
  returned: changed
  type: dict
  sample: {"format": "vdi", "reason": "auto: vdi, the fastest sparse format this Glance accepts"}
resumed:
  description: Whether this run continued an interrupted backup of the same name.
  returned: changed
  type: bool
stats:
  description: Figures of the transfer; empty when nothing was done.
  returned: always
  type: dict
  contains:
    bytes_read:
      description: Bytes read from the image.
      type: int
    zero_bytes_skipped:
      description: Bytes in all-zero chunks, which are not stored.
      type: int
    duplicate_bytes_skipped:
      description: Bytes in chunks the bank already held.
      type: int
    new_bytes:
      description: Bytes in chunks that were stored by this run (before compression).
      type: int
    bytes_written:
      description: Bytes written into the bank for chunks (after compression and encryption).
      type: int
    chunks:
      description: Number of chunks in the backup.
      type: int
    zero_chunks:
      description: Number of all-zero chunks.
      type: int
    duplicate_chunks:
      description: Number of chunks the bank already held.
      type: int
    chunks_written:
      description: Number of chunks uploaded by this run.
      type: int
    chunks_checked:
      description:
        - Number of chunks asked about with one HEAD request each, because no earlier backup of the volume
          named them and the bank was too big to list (see docs/bank-format.md, Deduplication).
      type: int
    requests:
      description: Bank requests the backup made, by kind (C(get), C(head), C(put), C(list) pages, C(delete)).
      type: dict
      sample: {"get": 4, "head": 0, "put": 4, "list": 1, "delete": 2}
    compression_ratio:
      description: RV(stats.new_bytes) divided by RV(stats.bytes_written).
      type: float
    seconds:
      description: Seconds of the whole run, the sum of RV(stats.seconds_per_phase).
      type: float
    mib_per_second:
      description: MiB of the volume per second of the C(download_and_stream) phase, the stream alone.
      type: float
    seconds_per_phase:
      description:
        - Seconds of each phase, C(prepare) (connecting, finding the volume, opening the bank),
          C(snapshot) and C(temporary_volume) (snapshot mode only), C(upload_to_image)
          (Cinder copying the volume into the temporary image), C(download_and_stream) (reading the image from
          Glance into the bank), C(cleanup) (removing the temporaries) and C(commit) (writing the manifest).
      type: dict
      sample: {"prepare": 1.9, "upload_to_image": 16.9, "download_and_stream": 14.1, "cleanup": 0.6, "commit": 0.1}
    glance:
      description:
        - What crossed Glance, C(transfer_format), C(image_size) (bytes of the temporary image),
          C(bytes_downloaded) (bytes read from Glance, ranges included) and C(range_requests).
      type: dict
      sample: {"transfer_format": "vdi", "image_size": 2149580800, "bytes_downloaded": 2149580800, "range_requests": 0}
would_create_bank:
  description:
    - In check mode, whether the bank (bucket, container or directory) is missing and the run would create it
      (O(bank.create=true)); check mode itself never creates it.
  returned: in check mode, when the backup does not exist yet
  type: bool
temporaries:
  description: The temporary resources of this run.
  returned: always
  type: dict
  contains:
    would_create:
      description: In check mode, the temporaries that would be created.
      type: list
      elements: dict
      returned: check mode
    created:
      description: Every temporary created (type, id, name).
      type: list
      elements: dict
      returned: changed
    removed:
      description: Temporaries removed.
      type: list
      elements: dict
      returned: changed
    left_behind:
      description: Temporaries that could not be removed, with the error; remove them by id or with the cleanup role.
      type: list
      elements: dict
      returned: changed
"""

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_argument_spec, bank_secrets
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.units import DEFAULT_CHUNK_SIZE_MIB
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.connection import openstack_argument_spec, openstack_secrets
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack.tags import DEFAULT_PREFIX
from ansible_collections.openstack_dr.bank.plugins.module_utils._runner import run_module
from ansible_collections.openstack_dr.bank.plugins.module_utils._volume_backup import run_volume_backup


def argument_spec() -> dict:
    return dict(
        openstack_argument_spec(),
        **bank_argument_spec(),
        backup_name=dict(type="str", required=True),
        chunk_size=dict(type="int", default=DEFAULT_CHUNK_SIZE_MIB, choices=[1, 2, 4, 8, 16, 32, 64]),
        compression_level=dict(type="int", default=3),
        copy_mode=dict(type="str", default="auto", choices=["auto", "snapshot", "direct"]),
        description=dict(type="str", default=""),
        force=dict(type="bool", default=False),
        lock_timeout=dict(type="int", default=600),
        parallelism=dict(type="int", default=4),
        progress_interval=dict(type="int", default=30),
        temporary_prefix=dict(type="str", default=DEFAULT_PREFIX),
        transfer_format=dict(type="str", default="auto", choices=["auto", "raw", "vdi", "vmdk", "qcow2"]),
        volume=dict(type="str", required=True),
    )


def main() -> None:
    run_module(argument_spec(), run_volume_backup, secrets=lambda params: bank_secrets(params) | openstack_secrets(params))


if __name__ == "__main__":
    main()
