# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/dr_drill.yml end to end on the two-site devcloud: targets, evidence, restore testing by sample.

Each test runs the playbook for real through ``ansible-playbook`` against a 1 GiB volume holding 8 MiB of
data at site A and an encrypted bank on Swift's S3 API, then reads the evidence files with the parsers
monitoring and CI use (junitparser, prometheus_client) and checks that nothing of the drill is left.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import junitparser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bank_fixtures import _remove_bucket as remove_bucket  # pylint: disable=wrong-import-order
from devcloud_fixtures import connect, load_sites  # pylint: disable=wrong-import-order
from drill_helpers import bank_backup_names, create_small_volume, delete_volume, drill_volumes, unique  # pylint: disable=wrong-import-order

REPO = pathlib.Path(__file__).resolve().parents[2]
PASSPHRASE = "drill passphrase that must never be printed"
STEPS = ["backup", "restore", "byte_proof", "rpo", "rto"]


def run_drill(extra: dict, workdir: pathlib.Path, timeout: float = 1500, playbook: str = "dr_drill.yml") -> subprocess.CompletedProcess:
    """ansible-playbook playbooks/<playbook> with these extra vars (from a 0600 file, as secrets should be)."""
    sites = load_sites()
    varsfile = workdir / "vars.yml"
    varsfile.write_text(yaml.safe_dump(extra))
    varsfile.chmod(0o600)
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=sites["clouds_yaml"], ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    command = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), str(REPO / "playbooks" / playbook),
               "-e", f"@{varsfile}", "-e", f"ansible_python_interpreter={sys.executable}"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False, cwd=REPO)


def evidence_paths(workdir: pathlib.Path, name: str) -> dict:
    return {"dr_drill_json_path": str(workdir / f"{name}.json"), "dr_drill_junit_path": str(workdir / f"{name}.xml"),
            "dr_drill_metrics_path": str(workdir / f"{name}.prom")}


def read_evidence(extra: dict) -> tuple[dict, dict, dict]:
    report = json.loads(pathlib.Path(extra["dr_drill_json_path"]).read_text())
    suites = {suite.name: suite for suite in junitparser.JUnitXml.fromfile(extra["dr_drill_junit_path"])}
    metrics = {family.name: family.samples
               for family in text_string_to_metric_families(pathlib.Path(extra["dr_drill_metrics_path"]).read_text())}
    return report, suites, metrics


@pytest.fixture(scope="module", name="drill_volume")
def fixture_drill_volume():
    conn = connect("site-a")
    volume = create_small_volume(conn, unique("e2e-drill"))
    yield volume
    delete_volume(conn, volume.id)
    conn.close()


@pytest.fixture(scope="module", name="drill_bank")
def fixture_drill_bank():
    with open(load_sites()["bank_yml"], encoding="utf-8") as handle:
        servers = yaml.safe_load(handle)
    bank = dict(servers["swift_s3"], bucket=unique("e2e-drill"), create=True)
    yield bank
    remove_bucket(bank)


def test_a_missed_rto_target_fails_the_drill_naming_the_volume_and_the_figure(drill_volume, drill_bank, tmp_path):
    run_id = unique("drill-e2e-rto")
    extra = {"dr_bank": drill_bank, "dr_encryption_passphrase": PASSPHRASE, "dr_site_a_cloud": "site-a",
             "dr_site_b_cloud": "site-b", "dr_volumes": [drill_volume.name], "dr_poll_interval": 2, "dr_drill_run_id": run_id,
             "dr_drill_rpo_target": 3600, "dr_drill_volume_targets": {drill_volume.name: {"rto": 1}},
             # Kept for the sample test below, which restores it without backing anything up.
             "dr_drill_keep_backups": True, **evidence_paths(tmp_path, "drill")}
    drill = run_drill(extra, tmp_path)
    output = drill.stdout + drill.stderr
    assert drill.returncode != 0, output[-3000:]
    assert f"{drill_volume.name}: rto: RTO " in output and "exceeds the target of 1 s" in output, output[-3000:]
    assert PASSPHRASE not in output and drill_bank["secret_key"] not in output

    report, suites, metrics = read_evidence(extra)
    assert report["run_id"] == run_id and report["mode"] == "full" and not report["passed"]
    (volume,) = report["volumes"]
    assert volume["volume"] == {"id": drill_volume.id, "name": drill_volume.name}
    assert {step: volume["steps"][step]["passed"] for step in STEPS} == {
        "backup": True, "restore": True, "byte_proof": True, "rpo": True, "rto": False}
    assert volume["rto_seconds"] > 1 and 0 <= volume["rpo_seconds"] < 3600 and volume["bytes"] == 1024 ** 3
    assert list(suites) == [drill_volume.name]
    cases = {case.name: case for case in suites[drill_volume.name]}
    assert list(cases) == STEPS and suites[drill_volume.name].failures == 1
    assert [name for name, case in cases.items() if not case.is_passed] == ["rto"]
    success = {sample.name: sample.value for sample in metrics["openstack_dr_bank_drill_success"]}
    assert success == {"openstack_dr_bank_drill_success": 0.0}
    assert metrics["openstack_dr_bank_drill_rto_target_seconds"][0].value == 1.0
    assert metrics["openstack_dr_bank_drill_bytes"][0].value == 1024 ** 3
    assert "openstack_dr_bank_drill_last_success_timestamp_seconds" not in metrics

    site_b = connect("site-b")
    assert drill_volumes(site_b, run_id) == [], "the drill's restored volume is left at site B"
    names = bank_backup_names(drill_bank, PASSPHRASE)
    assert names == {f"{drill_volume.name}-{run_id}"}, names  # the kept backup; the read-back is deleted


def test_sample_mode_restores_and_proves_the_newest_backup_without_backing_up(drill_volume, drill_bank, tmp_path):
    before = bank_backup_names(drill_bank, PASSPHRASE)
    assert before, "the test above leaves a backup to sample"
    run_id = unique("drill-e2e-sample")
    extra = {"dr_bank": drill_bank, "dr_encryption_passphrase": PASSPHRASE, "dr_site_b_cloud": "site-b",
             "dr_drill_mode": "sample", "dr_drill_sample_count": 1, "dr_drill_sample_strategy": "newest",
             "dr_volumes": [drill_volume.id], "dr_poll_interval": 2, "dr_drill_run_id": run_id,
             "dr_drill_rto_target": 1200, "dr_drill_rpo_target": 86400, **evidence_paths(tmp_path, "sample"),
             # Kept, as a drill that died would leave it, for the cleanup playbook to find by the run id.
             "dr_drill_keep_volumes": True}
    drill = run_drill(extra, tmp_path)
    output = drill.stdout + drill.stderr
    assert drill.returncode == 0, output[-4000:]
    assert f"Drill evidence: JSON {extra['dr_drill_json_path']}," in output and extra["dr_drill_metrics_path"] in output

    report, suites, metrics = read_evidence(extra)
    assert report["passed"] and report["mode"] == "sample" and report["drill"] == "dr_drill_sample"
    (volume,) = report["volumes"]
    assert volume["backup"]["name"] in before and volume["volume"]["id"] == drill_volume.id
    assert all(volume["steps"][step]["passed"] for step in STEPS)
    assert suites[drill_volume.name].failures == 0 and suites[drill_volume.name].tests == 5
    assert [sample.value for sample in metrics["openstack_dr_bank_drill_success"]] == [1.0]
    assert metrics["openstack_dr_bank_drill_last_success_timestamp_seconds"][0].labels["drill"] == "dr_drill_sample"

    assert bank_backup_names(drill_bank, PASSPHRASE) == before, "sample mode backed something up or left a read-back"
    site_b = connect("site-b")
    kept = drill_volumes(site_b, run_id)
    assert [volume.name for volume in kept] == [f"{volume['backup']['name']}-{run_id}"]
    assert kept[0].id == volume["steps"]["restore"]["restored_volume"]

    # The run id (matching no backup name) keeps the cleanup away from other runs' temporaries.
    cleanup = run_drill({"dr_cleanup_cloud": "site-b", "dr_cleanup_drill_run_id": run_id, "dr_cleanup_backups": [run_id]},
                        tmp_path, playbook="cleanup.yml")
    assert cleanup.returncode == 0, (cleanup.stdout + cleanup.stderr)[-3000:]
    assert drill_volumes(site_b, run_id) == [], "the cleanup playbook did not find the drill's volume by its run id"
