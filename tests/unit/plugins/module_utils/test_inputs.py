# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks of options that need neither the cloud nor the bank: refused by name, with the bound, first."""

from __future__ import annotations

import importlib
import json
import pathlib
import types

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.openstack_dr.bank.plugins.doc_fragments._openstack import ModuleDocFragment
from ansible_collections.openstack_dr.bank.plugins.module_utils import _inputs as inputs
from ansible_collections.openstack_dr.bank.plugins.module_utils import (
    _bank_backup_info,
    _bank_delete,
    _bank_sync,
    _drill_report,
    _temporaries_cleanup,
    _volume_backup,
    _volume_info,
    _volume_restore,
)
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_argument_spec
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.layout import backup_id_for_name
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankMissingError, InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._runner import run_module

ROOT = pathlib.Path(__file__).resolve().parents[4]


@pytest.mark.parametrize("value", [0, -5, 604801, 10 ** 400, "60", True, None])
def test_a_timeout_outside_its_bound_is_refused_with_the_bound(value):
    with pytest.raises(InvalidInputError, match=r"^timeout must be (between 1 and 604800 seconds|a number), got") as caught:
        inputs.check_number("timeout", value, inputs.TIMEOUT)
    assert caught.value.details["option"] == "timeout"


def test_numbers_inside_their_bound_pass():
    assert inputs.check_number("lock_timeout", 0, inputs.LOCK_TIMEOUT) == 0
    assert inputs.check_number("parallelism", 64, inputs.PARALLELISM) == 64
    assert inputs.check_number("size", None, inputs.VOLUME_SIZE, optional=True) is None
    assert inputs.check_number("verify_percent", 0.5, inputs.VERIFY_PERCENT) == 0.5


@pytest.mark.parametrize("value, why", [
    ("", "must not be empty"),
    ("   ", "must not be only whitespace"),
    (" db", "must not start or end with whitespace"),
    ("db\x00x", r"must not contain control characters \(found U\+0000\)"),
    ("db\nx", r"must not contain control characters \(found U\+000A\)"),
    ("db\x85x", r"must not contain control characters \(found U\+0085\)"),
    ("db-\U0001F4BE", r"must not contain 4-byte UTF-8 characters, which Cinder refuses \(found U\+1F4BE\)"),
    ("x" * 256, "must be at most 255 bytes in UTF-8"),
    ("é" * 128, "must be at most 255 bytes in UTF-8"),
    ("../x", r"must not contain '/' or '\\' \(a backup name is no path\)"),
    ("a\\b", r"must not contain '/' or '\\'"),
    (backup_id_for_name("other"), "must not look like a backup id"),
    (42, "must be a string"),
])
def test_bad_backup_names_are_refused_by_name(value, why):
    with pytest.raises(InvalidInputError, match=f"^backup_name {why}"):
        inputs.check_backup_name(value)


def test_good_backup_names_pass():
    for name in ("database-data-2026-11-25", "é" * 127, "x" * 255, "Base de données (prod) #1", backup_id_for_name("x").upper()):
        assert inputs.check_backup_name(name) == name


def test_volume_names_follow_cinder_limits_in_characters():
    assert inputs.check_volume_name("é" * 255, "restore_name")
    with pytest.raises(InvalidInputError, match="^restore_name must be at most 255 characters"):
        inputs.check_volume_name("é" * 256, "restore_name")
    with pytest.raises(InvalidInputError, match="^restore_name must not contain 4-byte UTF-8"):
        inputs.check_volume_name("vol-\U00010000", "restore_name")


def test_metadata_is_held_to_cinder_limits_and_our_keys_are_reserved():
    assert inputs.check_metadata({"app": "billing", "tier": 1, "empty": ""})
    with pytest.raises(InvalidInputError, match="^metadata key must not be empty"):
        inputs.check_metadata({"": "x"})
    with pytest.raises(InvalidInputError, match="^metadata.app must be at most 255 characters"):
        inputs.check_metadata({"app": "x" * 256})
    with pytest.raises(InvalidInputError, match="^metadata key is set by this collection"):
        inputs.check_metadata({"openstack_dr_bank_restored_from": "x"})
    with pytest.raises(InvalidInputError, match="^metadata.app must be a string"):
        inputs.check_metadata({"app": {"nested": 1}})


def test_long_values_are_shown_cut():
    with pytest.raises(InvalidInputError) as caught:
        inputs.check_backup_name("x" * 1000)
    assert "(1000 characters)" in str(caught.value) and len(str(caught.value)) < 200


def test_a_string_for_a_dict_with_suboptions_is_named():
    spec = {"bank": {"type": "dict", "options": {"type": {"type": "str"}}}, "metadata": {"type": "dict"}, "name": {"type": "str"}}
    assert inputs.unparsable_dicts(spec, {"bank": "not a dict", "metadata": {"a": 1}, "name": "x"}) == ["bank"]
    assert inputs.unparsable_dicts(spec, {"bank": "type=file", "metadata": '{"a": 1}'}) == []
    assert inputs.unparsable_dicts(spec, {}) == []


# -- every flow checks its options before it opens a bank or a connection ---------------------------

def _forbid_remote_calls(monkeypatch, flow):
    def refuse(*args, **kwargs):
        raise AssertionError("the flow reached the bank or the cloud before refusing a bad input")

    for name in ("open_bank", "connect"):
        if hasattr(flow, name):
            monkeypatch.setattr(flow, name, refuse)


OPENSTACK = {"timeout": 3600, "api_timeout": None}
BACKUP = dict(OPENSTACK, backup_name="db-1", volume="db", compression_level=3, lock_timeout=600, parallelism=4, progress_interval=30,
              temporary_prefix="dr-bank-tmp-", encryption_passphrase=None, bank={})
RESTORE = dict(OPENSTACK, backup="db-1", restore_name="db", size=None, parallelism=4, description=None, volume_type=None,
               availability_zone=None, metadata={}, temporary_prefix="dr-bank-tmp-", encryption_passphrase=None, bank={})
DELETE = {"backup": "db-1", "backups": None, "prune": False, "lock_timeout": 600, "encryption_passphrase": None, "bank": {}}
INFO = {"backup": None, "source_volume": None, "verify": "none", "verify_percent": 100.0, "encryption_passphrase": None, "bank": {}}
CLEANUP = dict(OPENSTACK, older_than=None, backups=[], source_volumes=[], run_id=None, drill_run_id=None)
VOLUME_INFO = dict(OPENSTACK, volumes=[], metadata={})
SYNC = {"source_bank": {}, "target_bank": {}, "backups": None, "follow_deletions": False, "lock_timeout": 600, "parallelism": 4,
        "encryption_passphrase": None}
DRILL = {"run_id": "drill-1", "drill_name": "dr_drill", "volumes": [], "errors": [], "mode": "full", "rpo_target": 0, "rto_target": 0,
         "volume_targets": {}, "started_at": None, "restore_finished_at": None, "json_path": None, "junit_path": None, "metrics_path": None}
FLOWS = {
    "volume_glance_backup": (_volume_backup, "run_volume_backup", BACKUP),
    "volume_glance_restore": (_volume_restore, "run_volume_restore", RESTORE),
    "bank_delete": (_bank_delete, "run_bank_delete", DELETE),
    "bank_backup_info": (_bank_backup_info, "run_bank_backup_info", INFO),
    "temporaries_cleanup": (_temporaries_cleanup, "run_temporaries_cleanup", CLEANUP),
    "volume_info": (_volume_info, "run_volume_info", VOLUME_INFO),
    "bank_sync": (_bank_sync, "run_bank_sync", SYNC),
    "drill_report": (_drill_report, "run_drill_report", DRILL),
}
REFUSED = [
    ("volume_glance_backup", "timeout", 0, "between 1 and 604800 seconds"),
    ("volume_glance_backup", "timeout", -5, "between 1 and 604800 seconds"),
    ("volume_glance_backup", "api_timeout", -1, "between 1 and 3600 seconds"),
    ("volume_glance_backup", "lock_timeout", -1, "between 0 and 86400 seconds"),
    ("volume_glance_backup", "parallelism", 0, "between 1 and 64"),
    ("volume_glance_backup", "parallelism", 65, "between 1 and 64"),
    ("volume_glance_backup", "progress_interval", 0, "between 1 and 600 seconds"),
    ("volume_glance_backup", "compression_level", 20, "between 1 and 19"),
    ("volume_glance_backup", "backup_name", "a\U0001F600", "4-byte UTF-8"),
    ("volume_glance_backup", "backup_name", backup_id_for_name("x"), "look like a backup id"),
    ("volume_glance_backup", "volume", "", "must not be empty"),
    ("volume_glance_backup", "temporary_prefix", "tmp/", "must not contain"),
    ("volume_glance_backup", "encryption_passphrase", "", "must not be empty"),
    ("volume_glance_restore", "restore_name", "", "must not be empty"),
    ("volume_glance_restore", "restore_name", "db\x00", "control characters"),
    ("volume_glance_restore", "parallelism", 0, "between 1 and 64"),
    ("volume_glance_restore", "size", 0, "between 1 and 1048576 GiB"),
    ("volume_glance_restore", "size", 1048577, "between 1 and 1048576 GiB"),
    ("volume_glance_restore", "timeout", 604801, "between 1 and 604800 seconds"),
    ("volume_glance_restore", "backup", "x" * 300, "at most 255 bytes"),
    ("volume_glance_restore", "description", "x" * 256, "at most 255 characters"),
    ("bank_delete", "lock_timeout", -1, "between 0 and 86400 seconds"),
    ("bank_delete", "lock_timeout", 86401, "between 0 and 86400 seconds"),
    ("bank_delete", "backup", "a\tb", "control characters"),
    ("bank_backup_info", "verify_percent", 0.0, "between 0.001 and 100 percent"),
    ("bank_backup_info", "verify_percent", 101.0, "between 0.001 and 100 percent"),
    ("temporaries_cleanup", "older_than", -1, "between 0 and 315360000 seconds"),
    ("temporaries_cleanup", "timeout", 0, "between 1 and 604800 seconds"),
    ("volume_info", "api_timeout", 0, "between 1 and 3600 seconds"),
    ("drill_report", "run_id", "", "must not be empty"),
    ("drill_report", "drill_name", "a\nb", "control characters"),
    ("drill_report", "started_at", "yesterday", "must be a UTC time as YYYY-MM-DDTHH:MM:SSZ"),
    ("drill_report", "restore_finished_at", "2026-12-03 10:00:00", "must be a UTC time as YYYY-MM-DDTHH:MM:SSZ"),
]

# Every int or float option of every module and its bound (chunk_size is a choice among powers of two).
NUMERIC_OPTIONS = {
    "volume_glance_backup": {"timeout": inputs.TIMEOUT, "api_timeout": inputs.API_TIMEOUT, "compression_level": inputs.COMPRESSION_LEVEL,
                             "lock_timeout": inputs.LOCK_TIMEOUT, "parallelism": inputs.PARALLELISM,
                             "progress_interval": inputs.PROGRESS_INTERVAL},
    "volume_glance_restore": {"timeout": inputs.TIMEOUT, "api_timeout": inputs.API_TIMEOUT, "parallelism": inputs.PARALLELISM,
                              "size": inputs.VOLUME_SIZE},
    "bank_delete": {"lock_timeout": inputs.LOCK_TIMEOUT},
    "bank_backup_info": {"verify_percent": inputs.VERIFY_PERCENT},
    "temporaries_cleanup": {"timeout": inputs.TIMEOUT, "api_timeout": inputs.API_TIMEOUT, "older_than": inputs.OLDER_THAN},
    "volume_info": {"timeout": inputs.TIMEOUT, "api_timeout": inputs.API_TIMEOUT},
    "bank_sync": {"lock_timeout": inputs.LOCK_TIMEOUT, "parallelism": inputs.PARALLELISM},
    "drill_report": {"rpo_target": inputs.DRILL_TARGET, "rto_target": inputs.DRILL_TARGET},
}
CHOICE_OPTIONS = {("volume_glance_backup", "chunk_size")}


def test_every_numeric_option_of_every_module_has_a_bound():
    for module_name in FLOWS:
        module = importlib.import_module(f"ansible_collections.openstack_dr.bank.plugins.modules.{module_name}")
        numeric = {name for name, spec in module.argument_spec().items() if spec.get("type") in ("int", "float")}
        assert numeric == set(NUMERIC_OPTIONS[module_name]) | {o for m, o in CHOICE_OPTIONS if m == module_name}, module_name


def _out_of_bounds(bound: inputs.Bound) -> list:
    below = [bound.minimum - 1, -1] + ([0] if bound.minimum > 0 else [])
    return sorted(set(below)) + [bound.maximum + 1]


NUMERIC_REFUSED = [(module_name, option, value, bound) for module_name, options in NUMERIC_OPTIONS.items()
                   for option, bound in options.items() for value in _out_of_bounds(bound)]


@pytest.mark.parametrize("module_name, option, value, bound", NUMERIC_REFUSED, ids=lambda v: str(v)[:20])
def test_each_flow_refuses_every_number_at_zero_negative_and_above_its_bound(monkeypatch, module_name, option, value, bound):
    flow, entry, defaults = FLOWS[module_name]
    _forbid_remote_calls(monkeypatch, flow)
    module = types.SimpleNamespace(params=dict(defaults, **{option: value}), check_mode=False)
    unit = f" {bound.unit}" if bound.unit else ""
    expected = f"must be between {inputs._number_text(bound.minimum)} and {inputs._number_text(bound.maximum)}{unit}"
    with pytest.raises(InvalidInputError, match=f"^{option} {expected}, got"):
        getattr(flow, entry)(module)


def test_a_sync_refuses_a_backup_name_with_a_control_character_before_the_banks(monkeypatch):
    _forbid_remote_calls(monkeypatch, _bank_sync)
    module = types.SimpleNamespace(params=dict(SYNC, backups=["db", "a\x00b"]), check_mode=False)
    with pytest.raises(InvalidInputError, match=r"^backups\[1\] must not contain control characters \(found U\+0000\)"):
        _bank_sync.run_bank_sync(module)


def test_a_drill_report_refuses_one_file_for_two_reports(tmp_path):
    params = dict(DRILL, json_path=str(tmp_path / "drill.out"), metrics_path=str(tmp_path / "drill.out"))
    with pytest.raises(InvalidInputError, match="^metrics_path and json_path must differ"):
        _drill_report.run_drill_report(types.SimpleNamespace(params=params, check_mode=False))
    assert not list(tmp_path.iterdir())


def test_a_drill_target_per_volume_must_be_rpo_or_rto_within_the_bound():
    params = dict(DRILL, volume_targets={"db": {"rtt": 5}})
    with pytest.raises(InvalidInputError, match=r"^volume_targets\.db must be a dict of rpo and/or rto"):
        _drill_report.run_drill_report(types.SimpleNamespace(params=params, check_mode=False))
    params = dict(DRILL, volume_targets={"db": {"rto": -5}})
    with pytest.raises(InvalidInputError, match=r"^volume_targets\.db\.rto must be between 0 and 315360000 seconds, got -5"):
        _drill_report.run_drill_report(types.SimpleNamespace(params=params, check_mode=False))


@pytest.mark.parametrize("module_name, option, value, bound", REFUSED, ids=lambda v: str(v)[:20])
def test_each_flow_refuses_a_bad_option_before_the_bank_or_the_cloud(monkeypatch, module_name, option, value, bound):
    flow, entry, defaults = FLOWS[module_name]
    _forbid_remote_calls(monkeypatch, flow)
    module = types.SimpleNamespace(params=dict(defaults, **{option: value}), check_mode=False)
    with pytest.raises(InvalidInputError, match=f"^{option} .*{bound}"):
        getattr(flow, entry)(module)


# -- the bounds are stated where users read them ----------------------------------------------------

DOCUMENTED_BOUNDS = [
    ("volume_glance_backup", "parallelism", inputs.PARALLELISM),
    ("volume_glance_backup", "lock_timeout", inputs.LOCK_TIMEOUT),
    ("volume_glance_backup", "progress_interval", inputs.PROGRESS_INTERVAL),
    ("volume_glance_backup", "compression_level", inputs.COMPRESSION_LEVEL),
    ("volume_glance_restore", "parallelism", inputs.PARALLELISM),
    ("bank_delete", "lock_timeout", inputs.LOCK_TIMEOUT),
    ("bank_sync", "lock_timeout", inputs.LOCK_TIMEOUT),
    ("bank_sync", "parallelism", inputs.PARALLELISM),
    ("drill_report", "rpo_target", inputs.DRILL_TARGET),
    ("drill_report", "rto_target", inputs.DRILL_TARGET),
]


@pytest.mark.parametrize("module_name, option, bound", DOCUMENTED_BOUNDS, ids=lambda v: str(v)[:24])
def test_module_docs_state_the_bounds_the_checks_apply(module_name, option, bound):
    module = importlib.import_module(f"ansible_collections.openstack_dr.bank.plugins.modules.{module_name}")
    text = " ".join(yaml.safe_load(module.DOCUMENTATION)["options"][option]["description"])
    assert f"V({int(bound.minimum)}) to V({int(bound.maximum)})" in text


def test_the_openstack_fragment_states_the_timeout_bounds():
    options = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert f"V(1) to V({inputs.TIMEOUT.maximum})" in " ".join(options["timeout"]["description"])
    assert f"V(1) to V({inputs.API_TIMEOUT.maximum})" in " ".join(options["api_timeout"]["description"])


ROLE_BOUNDS = {
    "volume_backup_parallelism": inputs.PARALLELISM, "volume_backup_step_timeout": inputs.TIMEOUT,
    "volume_restore_parallelism": inputs.PARALLELISM, "volume_restore_step_timeout": inputs.TIMEOUT,
    "bank_retention_lock_timeout": inputs.LOCK_TIMEOUT, "cleanup_older_than": inputs.OLDER_THAN, "cleanup_timeout": inputs.TIMEOUT,
}


def test_the_roles_check_the_module_bounds_of_what_they_pass_on():
    checked = {}
    for tasks in ROOT.glob("roles/*/tasks/main.yml"):
        for task in yaml.safe_load(tasks.read_text()):
            if task.get("name") == "Check the numeric variables against their bounds":
                checked.update({item["name"]: (item["min"], item["max"]) for item in task["loop"]})
    for name, bound in ROLE_BOUNDS.items():
        assert checked.get(name) == (bound.minimum, bound.maximum), name


# -- a module that only reads a bank gives advice it can follow --------------------------------------

def test_a_missing_bank_read_only_is_not_created_and_the_advice_is_not_create_true(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(BankMissingError, match=r"does not exist \(this module only reads a bank and never creates one") as caught:
        open_bank({"type": "file", "path": str(missing), "create": True}, read_only=True)
    assert "set create: true" not in str(caught.value) and not missing.exists()
    with pytest.raises(BankMissingError, match=r"does not exist \(set create: true to create it\)"):
        open_bank({"type": "file", "path": str(missing)})


def test_the_runner_names_a_dict_option_given_a_string(capsys):
    def flow(module):
        raise AssertionError("the flow ran with a bank that is not a dict")

    with patch_module_args({"bank": "not a dict"}), pytest.raises(SystemExit) as info:
        run_module(bank_argument_spec(), flow)
    result = json.loads(capsys.readouterr().out)
    assert info.value.code == 1 and result["failed"] is True
    assert result["msg"].startswith("bank must be a dict") and result["error_type"] == "InvalidInputError"


def test_a_huge_number_is_refused_without_printing_it_whole():
    with pytest.raises(InvalidInputError, match=r"^timeout must be between 1 and 604800 seconds, got 1000000000000") as caught:
        inputs.check_number("timeout", 10 ** 400, inputs.TIMEOUT)
    assert len(str(caught.value)) < 150


def test_a_string_for_a_dict_without_secrets_is_not_masked_in_the_answer(capsys):
    def flow(module):
        raise AssertionError("the flow ran with metadata that is not a dict")

    with patch_module_args({"metadata": "app"}), pytest.raises(SystemExit):
        run_module({"metadata": {"type": "dict"}}, flow)
    result = json.loads(capsys.readouterr().out)
    assert result["msg"] == "metadata must be a dict (what was given is neither a mapping nor JSON or key=value text)"
    assert inputs.holds_secrets(bank_argument_spec()["bank"]) and not inputs.holds_secrets({"type": "dict"})
