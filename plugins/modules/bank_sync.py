#!/usr/bin/python
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bank_sync
short_description: Replicate the backups of one bank into another
version_added: 0.1.0
description:
  - Copies the complete backups of O(source_bank) into O(target_bank), of any type (a directory, an S3
    bucket, a Swift container; source and target may differ), so that a second copy lives elsewhere (the
    3-2-1 rule). Backups still in progress in the source are not copied.
  - The target becomes a replica of the same bank. Its configuration object is the source's, so a replica
    of an encrypted bank has the same keys and opens with the same O(encryption_passphrase), and a backup
    restores from it exactly as from the source, with M(openstack_dr.bank.volume_glance_restore). A target
    that holds the configuration of another bank is refused with nothing copied.
  - Only the chunks the target lacks are copied, found with one listing of the target, and never one
    twice. Each is read from the source, verified before it is stored (decrypted and authenticated in an
    encrypted bank, decompressed, its hash compared with its id) and stored as the same bytes. A damaged
    or missing source chunk is not copied, and its backup is not copied; the module then fails at the end,
    naming the backups and chunks in RV(damaged), after copying every other backup.
  - A backup's manifest is written in the target last, after all its chunks, so the target never holds a
    complete-looking backup with a chunk missing. An interrupted run (killed, a network failure) leaves
    only chunks; the next run copies only what is still missing.
  - Holds a shared lock on the target while it copies, as a backup does, so a deletion or prune of the
    target waits for it. The source is only read; no lock is written there, and read-only credentials are
    enough. A source backup deleted while it is copied is left out (RV(vanished)).
  - With O(follow_deletions=true), the target's backups that the source no longer holds are then deleted,
    and the target is pruned (see M(openstack_dr.bank.bank_delete)). A backup still locked in the target
    stays until its date (RV(protected)).
  - A replica's manifests state the replica's own Object Lock, never the source's. Into a target with
    C(object_lock_days) everything a copied backup uses is locked (see that option). Into a target without
    it, the source's C(protected_until) is left out of the copied manifest, so the replica claims no
    protection it lacks and its backups can be deleted at once; only a manifest without Object Lock fields
    is copied byte for byte.
  - Reports, per source volume, the newest backup in each bank and how far the target lags behind
    (RV(volumes)), for monitoring.
  - Needs no OpenStack cloud, only the banks.
author:
  - openstack_dr.bank contributors (@openstack-dr)
extends_documentation_fragment:
  - openstack_dr.bank._attributes
attributes:
  check_mode:
    support: full
    details:
      - Copies nothing and reports the backups, chunks and bytes it would copy, and with O(follow_deletions=true)
        the backups it would delete and what the prune would remove. It lists both banks and reads the
        manifests, but no chunk, so it foresees a chunk missing from the source but not a damaged one.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A target that already holds every chosen backup gives RV(ignore:changed=false).
options:
  backups:
    description:
      - Only these backups. Each item is a backup name or id, or the name or id of a source volume (all its backups).
      - Empty or unset, every complete backup of the source.
      - With O(follow_deletions=true), only the target's backups that match are candidates for deletion.
    type: list
    elements: str
  encryption_passphrase:
    description:
      - Passphrase of an encrypted source bank; from Ansible Vault. The replica opens with the same one.
      - Needed to verify an encrypted bank's chunks before they are stored; it is an error to give one for an
        unencrypted bank or to leave it out for an encrypted one.
      - Never shown in the module's output or logs.
    type: str
  follow_deletions:
    description:
      - Delete from the target the backups the source no longer holds (among those O(backups) chooses), then
        remove what no complete backup in the target references (a prune), each under the exclusive lock of the
        target.
      - Waits for backups and syncs running on the target, up to O(lock_timeout).
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for a lock on the target (a deletion or a prune running there, or another run waiting) before
        giving up; V(0) to V(86400).
    type: int
    default: 600
  parallelism:
    description:
      - Chunks copied at once, V(1) to V(64); at most twice as many chunk objects are held in memory.
    type: int
    default: 4
  source_bank:
    description:
      - The bank to copy from, as the C(bank) option of the other modules of this collection.
      - Only read; never created, whatever C(create) says, and no lock is written there.
      - Every failure names the bank, the object key and the cause; secrets are never shown.
    type: dict
    required: true
    suboptions: &bank_suboptions
      access_key:
        description:
          - The S3 access key.
          - When not set, E(AWS_ACCESS_KEY_ID), then the profile and the usual AWS credential chain.
        type: str
      bucket:
        description:
          - The bucket, for C(type=s3). Required for that type.
        type: str
      ca_bundle:
        description:
          - A CA bundle to verify the S3 endpoint's certificate with.
          - When not set, E(AWS_CA_BUNDLE).
        type: path
      checksum_calculation:
        description:
          - When boto3 adds CRC checksums to S3 requests and checks them on responses.
          - V(when_supported) (used when not set) always does; V(when_required) only where the S3 API requires it,
            for older S3-compatible servers that reject the newer checksum headers.
        type: str
        choices: [when_supported, when_required]
      cloud:
        description:
          - The OpenStack cloud holding the container, for C(type=swift). Required for that type.
          - Either the name of a cloud in C(clouds.yaml), or a dict of connection settings as a C(clouds.yaml)
            entry holds them (C(auth_type), C(auth), C(region_name), C(verify)...), exactly like the C(cloud)
            option of the C(openstack.cloud) collection.
          - Passwords, secrets and tokens inside the dict are masked in the module's output.
        type: raw
      connect_timeout:
        description:
          - Seconds to wait for a connection to the object store (V(s3), V(swift)).
          - The library's default when not set.
        type: float
      container:
        description:
          - The container, for C(type=swift). Required for that type.
        type: str
      create:
        description:
          - Create the directory, bucket or container when it does not exist.
          - When V(false), a missing one is an error.
        type: bool
        default: false
      endpoint_url:
        description:
          - The S3 endpoint, for example V(https://rgw.example.com:8080) or V(http://swift.example.com:8080).
          - Path-style addressing is always used, so any S3-compatible server works.
          - When not set, the E(AWS_ENDPOINT_URL_S3) or E(AWS_ENDPOINT_URL) environment variable, else AWS.
        type: str
      max_attempts:
        description:
          - How many times one request is tried in all when it fails with a transient error.
          - V(1) disables retries.
        type: int
        default: 5
      max_total_time:
        description:
          - Seconds after which a failing request is no longer retried, whatever C(max_attempts) allows.
        type: float
        default: 120
      object_lock_days:
        description:
          - Days every chunk and manifest a backup writes stays locked (S3 Object Lock), for C(type=s3); see the
            C(bank) option of M(openstack_dr.bank.volume_glance_backup).
          - Reading an Object Lock bank needs nothing more. In O(target_bank), every chunk and manifest copied is
            locked, and every chunk already there that a copied backup reuses has its lock extended when it ends too
            early, until the later of the source backup's C(protected_until) and its creation date plus these days;
            the replica's manifest records its own C(protected_until). A backup the target holds locked for less than
            that (these days grew, or the source's lock did) is copied again, which extends its chunks' locks and
            writes its manifest anew. See C(docs/runbook.md) (bank sync).
        type: int
      object_lock_extension_days:
        description:
          - With C(object_lock_days), how many days beyond a backup's own date a reused chunk's lock is extended.
        type: int
      object_lock_mode:
        description:
          - With C(object_lock_days), the S3 Object Lock mode (V(governance) when unset).
        type: str
        choices: [governance, compliance]
      path:
        description:
          - The bank's directory, for C(type=file). Required for that type.
          - Objects are written atomically (temporary file, fsync, rename); no key can leave this directory.
        type: path
      prefix:
        description:
          - Keep the bank under this key prefix (V(s3), V(swift)) or subdirectory (V(file)), so one bucket or
            container can hold several banks.
          - A trailing V(/) is implied.
        type: str
        default: ""
      profile:
        description:
          - A profile of the AWS shared configuration files.
          - When not set, E(AWS_PROFILE).
        type: str
      read_timeout:
        description:
          - Seconds to wait for data from the object store (V(s3), V(swift)).
          - The library's default when not set.
        type: float
      region:
        description:
          - The S3 region.
          - When not set, E(AWS_REGION) or E(AWS_DEFAULT_REGION), else V(us-east-1).
          - A bucket created outside V(us-east-1) gets this region as its location constraint.
        type: str
      region_name:
        description:
          - The region of the cloud's object store, for C(type=swift).
        type: str
      secret_key:
        description:
          - The S3 secret key.
          - When not set, E(AWS_SECRET_ACCESS_KEY), then the profile and the usual AWS credential chain.
          - Never shown in the module's output or logs.
        type: str
      session_token:
        description:
          - The S3 session token of temporary credentials.
          - When not set, E(AWS_SESSION_TOKEN).
          - Never shown in the module's output or logs.
        type: str
      type:
        description:
          - The kind of bank.
          - V(file) is a directory on the host running the module (local disk or a mount).
          - V(s3) is a bucket of any S3-compatible object store (AWS, Ceph RGW, OpenStack Swift's s3api, MinIO), through boto3.
          - V(swift) is a container of OpenStack Swift, through openstacksdk.
        type: str
        required: true
        choices: [file, s3, swift]
      validate_certs:
        description:
          - Verify the S3 endpoint's TLS certificate.
          - Certificates are verified when not set.
        type: bool
      write_only:
        description:
          - The credentials may put, get and list but not delete; with O(follow_deletions=true) a target with
            this set is refused.
        type: bool
        default: false
  target_bank:
    description:
      - The bank to copy into, as the C(bank) option of the other modules of this collection; any type, not
        necessarily that of O(source_bank).
      - Empty, or a replica of the same bank made by an earlier run. With C(create=true) its directory,
        bucket or container is created when missing; in check mode it is not, and the prediction is a copy
        into an empty bank.
    type: dict
    required: true
    suboptions: *bank_suboptions
seealso:
  - module: openstack_dr.bank.bank_backup_info
  - module: openstack_dr.bank.bank_delete
  - module: openstack_dr.bank.volume_glance_restore
"""

EXAMPLES = r"""
- name: Keep a replica of the bank in a second object store
  openstack_dr.bank.bank_sync:
    source_bank: "{{ dr_bank }}"
    target_bank:
      type: swift
      cloud: site-b
      container: dr-bank-replica
      create: true
    encryption_passphrase: "{{ vault_dr_passphrase }}"
  register: replica

- name: Alert when a volume's replica lags more than a day behind
  ansible.builtin.assert:
    that: replica.volumes | rejectattr('lag_seconds', 'none') | selectattr('lag_seconds', 'gt', 86400) | list | length == 0

- name: Mirror the deletions of retention too, for one volume only
  openstack_dr.bank.bank_sync:
    source_bank: "{{ dr_bank }}"
    target_bank: "{{ dr_replica_bank }}"
    encryption_passphrase: "{{ vault_dr_passphrase }}"
    backups: [database-data]
    follow_deletions: true

- name: See what a sync would copy
  openstack_dr.bank.bank_sync:
    source_bank: "{{ dr_bank }}"
    target_bank: "{{ dr_replica_bank }}"
  check_mode: true
  register: would_copy
"""

RETURN = r"""
source:
  description: The source bank, as error messages name it (no secret).
  returned: always
  type: str
  sample: s3 bank http://s3.example.com/dr-bank
target:
  description: The target bank, as error messages name it (no secret).
  returned: always
  type: str
  sample: swift bank dr-bank-replica at https://keystone.site-b.example.com/v3
bank_config:
  description: V(copied) when the bank configuration was written into an empty target (or would be, in check mode), else V(present).
  returned: always
  type: str
  sample: present
copied:
  description: The backups copied (or that would be, in check mode), newest first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The backup's id.
      type: str
    name:
      description: The backup's name.
      type: str
    created_at:
      description: When the backup started, UTC.
      type: str
    source_volume:
      description: The C(id) and C(name) of the volume it was made of.
      type: dict
damaged:
  description:
    - The backups not copied because chunks of theirs are damaged or missing in the source; the module fails when there is any.
    - Each has the fields of RV(copied) and C(chunks), the bad chunks (the first 100) with C(chunk), its hex id, and C(error).
  returned: always
  type: list
  elements: dict
vanished:
  description: Backups deleted or replaced in the source while they were copied; each has the fields of RV(copied) and C(reason).
  returned: always
  type: list
  elements: dict
deleted:
  description:
    - With O(follow_deletions=true), the target's backups deleted (or that would be) with C(id), C(name), C(objects) and C(bytes)
      (their manifest and progress objects; the chunks no other backup uses are reclaimed by the prune, in RV(pruned)).
  returned: when O(follow_deletions=true)
  type: list
  elements: dict
protected:
  description:
    - With O(follow_deletions=true), the target's backups the source no longer holds but that stay, because their
      C(protected_until) date (an Object Lock target) is still ahead, with C(id), C(name), C(protected_until).
    - The first run after that date deletes them.
  returned: when O(follow_deletions=true)
  type: list
  elements: dict
pruned:
  description: With O(follow_deletions=true), what the prune of the target removed (or would remove).
  returned: when O(follow_deletions=true)
  type: dict
  contains:
    objects:
      description: Number of bank objects.
      type: int
    chunks:
      description: Chunks no complete backup referenced.
      type: int
    progress_objects:
      description: In-progress objects.
      type: int
    bytes:
      description: Bytes of those objects.
      type: int
counts:
  description: What the run did (or would do, in check mode).
  returned: always
  type: dict
  contains:
    backups_selected:
      description: Complete source backups chosen by O(backups).
      type: int
    backups_present:
      description: Of those, already in the target.
      type: int
    backups_copied:
      description: Backups copied.
      type: int
    backups_failed:
      description: Backups not copied because the source is damaged (RV(damaged)).
      type: int
    backups_deleted:
      description: Target backups deleted (O(follow_deletions=true)).
      type: int
    chunks_copied:
      description: Distinct chunks read, verified and stored in the target.
      type: int
    chunks_skipped:
      description: Distinct chunks of the copied backups that the target already held.
      type: int
    chunks_corrupt:
      description: Distinct source chunks that failed verification or were missing, not copied.
      type: int
    bytes_copied:
      description: Bytes of the chunk objects stored, as stored (compressed, encrypted).
      type: int
  sample: {"backups_selected": 3, "backups_present": 2, "backups_copied": 1, "backups_failed": 0, "backups_deleted": 0,
           "chunks_copied": 12, "chunks_skipped": 244, "chunks_corrupt": 0, "bytes_copied": 31457280}
volumes:
  description:
    - Per source volume of the chosen backups, the newest backup in each bank once the run is done (predicted in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    source_volume:
      description: The volume's C(id) and C(name).
      type: dict
    source_newest:
      description: The newest complete backup of the volume in the source (fields of RV(copied)); null when the source has none.
      type: dict
    target_newest:
      description: The newest complete backup of the volume in the target; null when the target has none.
      type: dict
    lag_seconds:
      description:
        - Seconds between the creation of the newest source backup and that of the newest backup in the target; V(0) when in step.
        - Null when either bank holds no backup of the volume.
      type: int
    in_sync:
      description: Whether the target holds the newest source backup.
      type: bool
stats:
  description: C(seconds) the run took and C(mib_per_second) of chunk bytes copied.
  returned: always
  type: dict
"""

import copy

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import ENCRYPTION_PASSPHRASE_SPEC, bank_suboptions_spec
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank_sync import run_bank_sync, sync_secrets
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.chunking import DEFAULT_PARALLELISM
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.locks import DEFAULT_LOCK_WAIT_TIMEOUT
from ansible_collections.openstack_dr.bank.plugins.module_utils._runner import run_module


def argument_spec() -> dict:
    return dict(
        backups=dict(type="list", elements="str"),
        encryption_passphrase=copy.deepcopy(ENCRYPTION_PASSPHRASE_SPEC),
        follow_deletions=dict(type="bool", default=False),
        lock_timeout=dict(type="int", default=int(DEFAULT_LOCK_WAIT_TIMEOUT)),
        parallelism=dict(type="int", default=DEFAULT_PARALLELISM),
        source_bank=dict(bank_suboptions_spec(), required=True),
        target_bank=dict(bank_suboptions_spec(), required=True),
    )


def main() -> None:
    run_module(argument_spec(), run_bank_sync, secrets=sync_secrets)


if __name__ == "__main__":
    main()
