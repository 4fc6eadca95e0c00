# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of O(bank) and O(encryption_passphrase), private to this collection's modules."""

from __future__ import annotations


class ModuleDocFragment:
    """The O(bank) and O(encryption_passphrase) options every module that touches a bank shares.

    A static copy of plugins/module_utils/_bank/options.py's table (ansible-doc reads this file,
    not the code); tests/unit/plugins/module_utils/_bank/test_options.py holds the two together.
    """

    DOCUMENTATION = r"""
options:
  bank:
    description:
      - Where the backups live; a directory, an S3 bucket or a Swift container.
      - The options a type does not use must not be set.
      - Every failure names the bank, the object key and the cause; secrets are never shown.
      - Transient errors (HTTP 5xx, throttling, connection resets, timeouts) are retried with jittered
        exponential backoff, bounded by O(bank.max_attempts) and O(bank.max_total_time).
    type: dict
    required: true
    suboptions:
      access_key:
        description:
          - The S3 access key.
          - When not set, E(AWS_ACCESS_KEY_ID), then the profile and the usual AWS credential chain.
        type: str
      bucket:
        description:
          - The bucket, for O(bank.type=s3). Required for that type.
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
          - The OpenStack cloud holding the container, for O(bank.type=swift). Required for that type.
          - Either the name of a cloud in C(clouds.yaml), or a dict of connection settings as a C(clouds.yaml)
            entry holds them (C(auth_type), C(auth), C(region_name), C(verify)...), exactly like the C(cloud)
            option of the C(openstack.cloud) collection.
          - Passwords, secrets and tokens inside the dict are masked in the module's output.
        type: raw
      connect_timeout:
        description:
          - Seconds to wait for a connection to the object store (V(s3), V(swift)).
          - From V(0.001) to V(3600); the library's default when not set.
        type: float
      container:
        description:
          - The container, for O(bank.type=swift). Required for that type.
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
          - An endpoint that answers a bucket request without an S3 error code (Keystone's URL, a web server)
            is refused as not an S3 service.
          - When not set, the E(AWS_ENDPOINT_URL_S3) or E(AWS_ENDPOINT_URL) environment variable, else AWS.
        type: str
      max_attempts:
        description:
          - How many times one request is tried in all when it fails with a transient error.
          - From V(1) to V(100); V(1) disables retries.
        type: int
        default: 5
      max_total_time:
        description:
          - Seconds after which a failing request is no longer retried, whatever O(bank.max_attempts) allows.
          - From V(0) to V(86400).
        type: float
        default: 120
      object_lock_days:
        description:
          - Keep every chunk and manifest a backup writes immutable (S3 Object Lock) for at least this many days;
            a chunk a later backup reuses has its lock extended. Needs a bucket created with Object Lock.
          - From V(1) to V(36500). A backup is complete only once all its objects are locked until its
            RV(ignore:backup.protected_until) date; until then neither a delete nor an overwrite through
            another version can remove what it restores from.
          - With O(bank.create=true) a missing bucket is created with Object Lock enabled.
          - See C(docs/runbook.md) for the write-only credentials of the protected site.
        type: int
      object_lock_extension_days:
        description:
          - When a reused chunk's lock must be extended, extend it this many days beyond the new backup's own
            date, so daily backups extend each chunk once in that many days (V(7) when unset).
          - From V(0) to V(3650). New chunks and manifests are locked that long beyond O(bank.object_lock_days) too.
        type: int
      object_lock_mode:
        description:
          - The S3 Object Lock mode of what backups write, with O(bank.object_lock_days) (V(governance) when unset).
          - V(governance) lets a user with the bypass permission remove a locked object; V(compliance) lets nobody
            shorten the lock, the object store's administrator excepted.
        type: str
        choices: [governance, compliance]
      path:
        description:
          - The bank's directory, for O(bank.type=file). Required for that type.
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
          - From V(0.001) to V(3600); the library's default when not set.
        type: float
      region:
        description:
          - The S3 region.
          - When not set, E(AWS_REGION) or E(AWS_DEFAULT_REGION), else V(us-east-1).
          - A bucket created outside V(us-east-1) gets this region as its location constraint.
        type: str
      region_name:
        description:
          - The region of the cloud's object store, for O(bank.type=swift).
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
          - The credentials may put, get and list but not delete (a protected site's); backups, their
            resumes and O(bank) reads then never send a delete.
          - Locks are released and progress is closed by writing, not by deleting; a released lock stays as a
            small object until a O(bank) user with delete rights prunes.
          - Deletes and prunes need other, privileged credentials.
        type: bool
        default: false
  encryption_passphrase:
    description:
      - Passphrase of an encrypted bank; from Ansible Vault.
      - Given on the first backup into an empty bank, it makes the bank encrypted; every later operation on
        that bank then needs it, and a wrong passphrase is a clear error.
      - A bank is either encrypted or not; it is an error to give a passphrase for an unencrypted bank
        or to leave it out for an encrypted one.
      - In an encrypted bank the manifests and progress objects are encrypted too, so without the passphrase
        no object shows a backup's name, source volume, metadata or image hashes.
      - Never shown in the module's output or logs.
    type: str
"""
