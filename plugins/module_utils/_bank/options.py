# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``bank`` option: one table of its suboptions, and everything derived from it.

``BANK_OPTIONS`` is the source of the argument spec (``bank_argument_spec``), of the check
that a bank takes only its type's options, and of each backend's constructor arguments
(``backend_arguments``). doc_fragments/_bank.py is a static copy for ansible-doc; a unit test
holds it to this table.
"""

from __future__ import annotations

import copy
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.retry import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_TOTAL_SECONDS,
    RetryPolicy,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._secrets import secret_values

BANK_TYPES = ("file", "s3", "swift")
_REMOTE = ("s3", "swift")


class BankOption(t.NamedTuple):
    """One suboption of ``bank``."""

    name: str
    type: str
    #: The first line of its documentation in doc_fragments/_bank.py.
    description: str
    #: The types whose backend constructor receives it.
    backends: tuple[str, ...]
    default: t.Any = None
    no_log: bool | None = None
    choices: tuple[str, ...] | None = None
    #: The types that need it (all types: ``required``; some: ``required_if``).
    required_for: tuple[str, ...] = ()
    #: The smallest value ``open_bank`` accepts (numbers only).
    minimum: float | None = None
    #: The largest value ``open_bank`` accepts (numbers only): above it, a typo.
    maximum: float | None = None
    #: Environment variables the backend or its SDK reads when the option is not set.
    env: tuple[str, ...] = ()
    #: Types that accept the option and ignore it (a file bank takes the network settings).
    ignored_by: tuple[str, ...] = ()
    #: The constructor parameter it feeds: its own name, ``retry`` (one RetryPolicy), or None.
    argument: str | None = ""


# Sorted by name. Type-specific options carry no default, so "set for another type" stays
# distinct from "unset"; nor an Ansible fallback: boto3 reads AWS_* itself, and a file or
# swift bank must not be handed S3 settings from the environment.
BANK_OPTIONS: tuple[BankOption, ...] = (
    BankOption("access_key", "str", "The S3 access key.", ("s3",), no_log=False, env=("AWS_ACCESS_KEY_ID",)),
    BankOption("bucket", "str", "The bucket, for O(bank.type=s3). Required for that type.", ("s3",), required_for=("s3",)),
    BankOption("ca_bundle", "path", "A CA bundle to verify the S3 endpoint's certificate with.", ("s3",), env=("AWS_CA_BUNDLE",)),
    BankOption("checksum_calculation", "str", "When boto3 adds CRC checksums to S3 requests and checks them on responses.",
               ("s3",), choices=("when_supported", "when_required")),
    # A str (clouds.yaml name) or a dict: no_log would mask every value of the dict (region, user and
    # domain names) throughout the output, so only its secrets are masked, by bank_secrets().
    BankOption("cloud", "raw", "The OpenStack cloud holding the container, for O(bank.type=swift). Required for that type.",
               ("swift",), no_log=False, required_for=("swift",)),
    BankOption("connect_timeout", "float", "Seconds to wait for a connection to the object store (V(s3), V(swift)).",
               _REMOTE, minimum=0.001, maximum=3600, ignored_by=("file",)),
    BankOption("container", "str", "The container, for O(bank.type=swift). Required for that type.", ("swift",), required_for=("swift",)),
    BankOption("create", "bool", "Create the directory, bucket or container when it does not exist.", BANK_TYPES, default=False),
    BankOption("endpoint_url", "str", "The S3 endpoint, for example V(https://rgw.example.com:8080) or V(http://swift.example.com:8080).",
               ("s3",), env=("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")),
    BankOption("max_attempts", "int", "How many times one request is tried in all when it fails with a transient error.",
               _REMOTE, default=DEFAULT_MAX_ATTEMPTS, minimum=1, maximum=100, ignored_by=("file",), argument="retry"),
    BankOption("max_total_time", "float", "Seconds after which a failing request is no longer retried, whatever O(bank.max_attempts) allows.",
               _REMOTE, default=DEFAULT_MAX_TOTAL_SECONDS, minimum=0, maximum=86400, ignored_by=("file",), argument="retry"),
    BankOption("object_lock_days", "int", "Keep every chunk and manifest a backup writes immutable (S3 Object Lock) for at least "
               "this many days; a chunk a later backup reuses has its lock extended. Needs a bucket created with Object Lock.",
               ("s3",), minimum=1, maximum=36500),
    BankOption("object_lock_extension_days", "int", "When a reused chunk's lock must be extended, extend it this many days beyond "
               "the new backup's own date, so daily backups extend each chunk once in that many days (V(7) when unset).",
               ("s3",), minimum=0, maximum=3650),
    BankOption("object_lock_mode", "str", "The S3 Object Lock mode of what backups write, with O(bank.object_lock_days) "
               "(V(governance) when unset).", ("s3",), choices=("governance", "compliance")),
    BankOption("path", "path", "The bank's directory, for O(bank.type=file). Required for that type.", ("file",), required_for=("file",)),
    BankOption("prefix", "str", "Keep the bank under this key prefix (V(s3), V(swift)) or subdirectory (V(file)), so one bucket or "
               "container can hold several banks.", BANK_TYPES, default=""),
    BankOption("profile", "str", "A profile of the AWS shared configuration files.", ("s3",), env=("AWS_PROFILE",)),
    BankOption("read_timeout", "float", "Seconds to wait for data from the object store (V(s3), V(swift)).",
               _REMOTE, minimum=0.001, maximum=3600, ignored_by=("file",)),
    BankOption("region", "str", "The S3 region.", ("s3",), env=("AWS_REGION", "AWS_DEFAULT_REGION")),
    BankOption("region_name", "str", "The region of the cloud's object store, for O(bank.type=swift).", ("swift",)),
    BankOption("secret_key", "str", "The S3 secret key.", ("s3",), no_log=True, env=("AWS_SECRET_ACCESS_KEY",)),
    BankOption("session_token", "str", "The S3 session token of temporary credentials.", ("s3",), no_log=True, env=("AWS_SESSION_TOKEN",)),
    BankOption("type", "str", "The kind of bank.", BANK_TYPES, choices=BANK_TYPES, required_for=BANK_TYPES, argument=None),
    BankOption("validate_certs", "bool", "Verify the S3 endpoint's TLS certificate.", ("s3",)),
    BankOption("write_only", "bool", "The credentials may put, get and list but not delete (a protected site's); backups, their "
               "resumes and O(bank) reads then never send a delete.", BANK_TYPES, default=False),
)
OPTIONS_BY_NAME = {option.name: option for option in BANK_OPTIONS}

ENCRYPTION_PASSPHRASE_SPEC: dict[str, t.Any] = dict(type="str", no_log=True)

# Names whose values inside O(bank.cloud) are secrets (clouds.yaml auth and the like).


def _option_spec(option: BankOption) -> dict[str, t.Any]:
    spec: dict[str, t.Any] = {"type": option.type}
    if option.required_for == BANK_TYPES:
        spec["required"] = True
    if option.default is not None:
        spec["default"] = option.default
    if option.no_log is not None:
        spec["no_log"] = option.no_log
    if option.choices:
        spec["choices"] = list(option.choices)
    return spec


def bank_suboptions_spec() -> dict[str, t.Any]:
    """The ``bank`` dict's argument spec: its suboptions and, per type, the ones it requires."""
    required_if = [
        ("type", kind, [o.name for o in BANK_OPTIONS if kind in o.required_for and o.required_for != BANK_TYPES])
        for kind in BANK_TYPES
    ]
    return dict(
        type="dict",
        options={option.name: _option_spec(option) for option in BANK_OPTIONS},
        required_if=[rule for rule in required_if if rule[2]],
    )


def bank_argument_spec(required: bool = True, with_passphrase: bool = True) -> dict[str, t.Any]:
    """Argument spec entries for ``bank`` (and ``encryption_passphrase``) to merge into a module's spec."""
    spec: dict[str, t.Any] = dict(bank=dict(bank_suboptions_spec(), required=required))
    if with_passphrase:
        spec["encryption_passphrase"] = copy.deepcopy(ENCRYPTION_PASSPHRASE_SPEC)
    return spec


def accepted_options(kind: str) -> frozenset[str]:
    """The suboptions a bank of type ``kind`` may set."""
    return frozenset(o.name for o in BANK_OPTIONS if kind in o.backends or kind in o.ignored_by)


def _number(config: t.Mapping[str, t.Any], option: BankOption) -> t.Any:
    value = config.get(option.name)
    if value is None:
        return None
    try:
        value = (int if option.type == "int" else float)(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"O(bank.{option.name}) must be a number, got {value!r}") from None
    if option.minimum is not None and value < option.minimum:
        raise InvalidInputError(f"O(bank.{option.name}) must be at least {option.minimum}, got {value!r}", option=f"bank.{option.name}")
    if option.maximum is not None and value > option.maximum:
        raise InvalidInputError(f"O(bank.{option.name}) must be at most {option.maximum}, got {value!r}", option=f"bank.{option.name}")
    return value


def retry_policy(config: t.Mapping[str, t.Any]) -> RetryPolicy:
    """The retry bounds a ``bank`` config asks for (``max_attempts``, ``max_total_time``)."""
    attempts = _number(config, OPTIONS_BY_NAME["max_attempts"])
    total = _number(config, OPTIONS_BY_NAME["max_total_time"])
    return RetryPolicy(
        max_attempts=DEFAULT_MAX_ATTEMPTS if attempts is None else attempts,
        max_total=DEFAULT_MAX_TOTAL_SECONDS if total is None else total,
    )


def _value(config: t.Mapping[str, t.Any], option: BankOption) -> t.Any:
    if option.minimum is not None or option.maximum is not None:
        return _number(config, option)
    value = config.get(option.name)
    if option.type == "bool" and value is not None:
        return bool(value)
    return value


def backend_arguments(kind: str, config: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The constructor arguments of a ``kind`` bank from its ``bank`` config, checked.

    Keys set to ``None`` count as unset, so the dict Ansible builds can be passed as it is;
    any other key the type does not take is an ``InvalidInputError``, and so is a number out of bounds.
    """
    given = {name for name, value in config.items() if value is not None}
    unknown = sorted(given - accepted_options(kind))
    if unknown:
        raise InvalidInputError(f"O(bank) of type {kind} does not take {', '.join(unknown)}", option="bank")
    arguments: dict[str, t.Any] = {}
    for option in BANK_OPTIONS:
        value = _value(config, option)  # ignored numbers are checked too
        if kind not in option.backends or option.argument is None:
            continue
        if option.argument == "retry":
            arguments.setdefault("retry", retry_policy(config))
        else:
            arguments[option.name] = value
    return arguments


def bank_secrets(params: t.Mapping[str, t.Any]) -> set[str]:
    """The secret strings inside O(bank.cloud) (passwords, tokens...) of a module's ``params``.

    no_log cannot reach into a raw option: these are the values to add to ``module.no_log_values``
    (``run_module(..., secrets=bank_secrets)`` does).
    """
    bank = params.get("bank")
    return secret_values(bank.get("cloud")) if isinstance(bank, dict) else set()
