# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""drill_report: targets judged per volume, and the three evidence files read back by real parsers."""

from __future__ import annotations

import json
import os
import pathlib
import re
import types

import junitparser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.openstack_dr.bank.plugins.module_utils import _drill_report
from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import parse_utc
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError, ReportWriteError

RUNBOOK = pathlib.Path(__file__).resolve().parents[4] / "docs" / "runbook.md"
HASHES = {"sha256": "a" * 64, "sha512": "b" * 128}
FINISHED = "2026-12-01T10:00:00Z"


def entry(name: str, rto: float = 40.0, created: str = "2026-12-01T09:55:00Z", readback_hashes: dict | None = None, **changes) -> dict:
    volume_id = f"id-{name}"
    value = {
        "volume": {"id": volume_id, "name": name},
        "backup": {"id": f"b-{name}", "name": f"{name}-drill", "created_at": created, "size": 1073741824,
                   "stored_bytes": 12345, "hashes": HASHES},
        "backup_failed": False, "backup_msg": "", "backup_seconds": 30.5, "backup_made": True,
        "newest_backup_created_at": created,
        "restore": {"failed": False, "msg": "", "volume": {"id": f"r-{name}"}, "stats": {"seconds": rto}},
        "readback": {"failed": False, "backup": {"hashes": HASHES if readback_hashes is None else readback_hashes}},
    }
    value.update(changes)
    return value


def params(volumes: list, tmp_path: pathlib.Path | None = None, **changes) -> dict:
    value = {"run_id": "drill-1", "drill_name": "dr_drill", "mode": "full", "started_at": "2026-12-01T09:50:00Z",
             "restore_finished_at": FINISHED, "volumes": volumes, "errors": [], "rpo_target": 0, "rto_target": 0,
             "volume_targets": {}, "json_path": None, "junit_path": None, "metrics_path": None}
    if tmp_path is not None:
        value.update(json_path=str(tmp_path / "drill.json"), junit_path=str(tmp_path / "drill.xml"),
                     metrics_path=str(tmp_path / "drill.prom"))
    value.update(changes)
    return value


def module(check_mode: bool = False, **values) -> types.SimpleNamespace:
    return types.SimpleNamespace(params=values, check_mode=check_mode)


def metric_samples(text: str) -> dict[str, list]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_a_missed_rto_target_fails_the_volume_naming_the_figure():
    report = _drill_report.build_report(params([entry("db", rto=48.2), entry("web", rto=10)], rto_target=3600,
                                               volume_targets={"db": {"rto": 30}}))
    assert not report["passed"]
    assert report["failures"] == ["db: rto: RTO 48.2 s exceeds the target of 30 s"]
    db, web = report["volumes"]
    assert [db["steps"][step]["passed"] for step in _drill_report.STEPS] == [True, True, True, True, False]
    assert web["passed"] and web["steps"]["rto"]["target"] == 3600


def test_rpo_is_the_age_of_the_newest_backup_at_restore_time_and_targets_go_by_name_or_id():
    old = entry("db", created="2026-12-01T08:00:00Z", newest_backup_created_at="2026-12-01T09:00:00Z")
    report = _drill_report.build_report(params([old], rpo_target=100, volume_targets={"id-db": {"rpo": 3600}}))
    assert report["volumes"][0]["rpo_seconds"] == 3600.0 and report["passed"]
    report = _drill_report.build_report(params([old], rpo_target=100))
    assert report["failures"] == ["db: rpo: RPO 3600.0 s exceeds the target of 100 s"]


def test_different_bytes_fail_the_byte_proof_and_a_failed_restore_leaves_later_steps_unreached():
    report = _drill_report.build_report(params([entry("db", readback_hashes={"sha256": "c" * 64, "sha512": "d" * 128})]))
    assert report["volumes"][0]["steps"]["byte_proof"]["passed"] is False
    assert "restored bytes differ" in report["failures"][0] and report["volumes"][0]["bytes"] == 0
    # A backup that crossed Glance in a sparse format records only sha256: that is the proof then.
    sparse = entry("db", backup=dict(entry("db")["backup"], hashes={"sha256": "a" * 64}), readback_hashes={"sha256": "a" * 64})
    assert _drill_report.build_report(params([sparse]))["volumes"][0]["steps"]["byte_proof"]["passed"]
    wrong = entry("db", backup=dict(entry("db")["backup"], hashes={"sha256": "a" * 64}), readback_hashes={"sha256": "e" * 64})
    assert "sha256 eeee" in _drill_report.build_report(params([wrong]))["failures"][0]
    failed = entry("db", restore={"failed": True, "msg": "Glance said no", "volume": {}, "stats": {}})
    steps = _drill_report.build_report(params([failed]))["volumes"][0]["steps"]
    assert steps["restore"] == {"passed": False, "reached": True, "message": "Glance said no", "seconds": 0.0, "restored_volume": None}
    assert [steps[step]["reached"] for step in ("byte_proof", "rto")] == [False, False]


def test_a_failed_backup_and_a_drill_error_are_failures():
    report = _drill_report.build_report(params([entry("db", backup={}, backup_failed=True, backup_msg="snapshot failed")],
                                               errors=["Volumes not found: ghost"]))
    assert report["failures"][0] == "Volumes not found: ghost"
    assert report["failures"][1] == "db: backup: snapshot failed"
    assert not _drill_report.build_report(params([]))["passed"]
    with pytest.raises(InvalidInputError, match=r"volumes\[0\]"):
        _drill_report.build_report(params(["db"]))


def test_the_three_files_parse_with_real_parsers(tmp_path):
    values = params([entry("db", rto=48.2), entry("web")], tmp_path, rto_target=45)
    result = _drill_report.run_drill_report(module(**values))
    assert result["changed"] and not result["passed"]

    report = json.loads((tmp_path / "drill.json").read_text())
    assert report == json.loads(json.dumps(result["report"]))
    assert report["format"] == "openstack_dr.bank/drill-report" and report["format_version"] == 1

    xml = junitparser.JUnitXml.fromfile(str(tmp_path / "drill.xml"))
    suites = {suite.name: suite for suite in xml}
    assert sorted(suites) == ["db", "web"]
    assert [case.name for case in suites["db"]] == list(_drill_report.STEPS)
    assert suites["db"].failures == 1 and suites["web"].failures == 0 and suites["db"].tests == 5
    rto = [case for case in suites["db"] if case.name == "rto"][0]
    assert not rto.is_passed and "RTO 48.2 s exceeds the target of 45 s" in rto.result[0].message
    assert all(case.is_passed for case in suites["web"])

    samples = metric_samples((tmp_path / "drill.prom").read_text())
    success = {sample.labels["volume"]: sample.value for sample in samples["openstack_dr_bank_drill_success"]}
    assert success == {"db": 0.0, "web": 1.0}
    rto_seconds = {sample.labels["volume"]: sample.value for sample in samples["openstack_dr_bank_drill_rto_seconds"]}
    assert rto_seconds == {"db": 48.2, "web": 40.0}
    assert [s.labels["volume"] for s in samples["openstack_dr_bank_drill_last_success_timestamp_seconds"]] == ["web"]
    assert samples["openstack_dr_bank_drill_failed_volumes"][0].value == 1.0
    assert {s.labels["step"] for s in samples["openstack_dr_bank_drill_step_success"]} == set(_drill_report.STEPS)
    assert oct(os.stat(tmp_path / "drill.prom").st_mode & 0o777) == "0o644"
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_a_failed_drill_keeps_the_last_success_time_of_the_run_before(tmp_path):
    values = params([entry("db")], tmp_path, metrics_path=str(tmp_path / "drill.prom"))
    _drill_report.run_drill_report(module(**values))
    first = metric_samples((tmp_path / "drill.prom").read_text())["openstack_dr_bank_drill_last_success_timestamp_seconds"][0].value
    _drill_report.run_drill_report(module(**{**values, "rto_target": 1}))
    samples = metric_samples((tmp_path / "drill.prom").read_text())
    assert samples["openstack_dr_bank_drill_success"][0].value == 0.0
    assert samples["openstack_dr_bank_drill_last_success_timestamp_seconds"][0].value == first


def test_check_mode_writes_nothing_and_predicts_a_change(tmp_path):
    result = _drill_report.run_drill_report(module(check_mode=True, **params([entry("db")], tmp_path)))
    assert result["changed"] and os.listdir(tmp_path) == []


def test_an_unwritable_path_is_a_report_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReportWriteError, match="Failed to write"):
        _drill_report.write_atomically(str(tmp_path / "file" / "drill.json"), "{}")


def test_label_values_are_escaped_for_the_text_format():
    report = _drill_report.build_report(params([entry('we"ird\\name')]))
    samples = metric_samples(_drill_report.render_metrics(report, now=parse_utc(FINISHED)))
    assert samples["openstack_dr_bank_drill_success"][0].labels["volume"] == 'we"ird\\name'


def test_the_runbook_alerting_rules_use_metrics_the_report_writes():
    rules_yaml = re.search(r"```yaml\n(# prometheus rules.*?)```", RUNBOOK.read_text(), re.S)
    assert rules_yaml, "docs/runbook.md has no ```yaml block starting with '# prometheus rules'"
    rules = [rule for group in yaml.safe_load(rules_yaml.group(1))["groups"] for rule in group["rules"]]
    assert rules and all("alert" in rule and "expr" in rule for rule in rules)
    report = _drill_report.build_report(params([entry("db")], rto_target=60, rpo_target=3600))
    assert report["passed"]
    written = set(metric_samples(_drill_report.render_metrics(report, now=parse_utc(FINISHED))))
    for rule in rules:
        used = set(re.findall(r"\bopenstack_dr_bank_\w+", rule["expr"]))
        assert used and used <= written, f"{rule['alert']} uses {sorted(used - written)}, not written"
