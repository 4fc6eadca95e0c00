# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWX-ready, proven: the runbook's job templates through ansible-runner, and the execution environment.

The job templates of tests/awx/job_templates.yml run through ``ansible-runner run`` in a private data dir
laid out as AWX lays it out (awx_jobs.py), against the two-site devcloud and a moto S3 bank: the OpenStack
credential as AWX injects it (one clouds.yaml whose cloud is ``devstack``), the bank as a custom
credential type's extra vars, the limit and extra vars as the job template passes them. Every file the
job leaves for AWX (job events, stdout, command) is searched for the secrets. The execution environment
definition goes through ``ansible-builder create`` (no container engine here: the image is not built).
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import shutil
import subprocess

import junitparser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from awx_jobs import REPO, VENV_BIN, install_collection, launch, load_templates  # pylint: disable=wrong-import-order
from bank_fixtures import _remove_bucket as remove_bucket  # pylint: disable=wrong-import-order
from devcloud_fixtures import connect, load_sites  # pylint: disable=wrong-import-order
from drill_helpers import bank_backup_names, create_small_volume, delete_volume, drill_volumes, unique  # pylint: disable=wrong-import-order


def requirement_lines(path: pathlib.Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


def test_the_execution_environment_definition_gives_a_build_context_with_the_collections_requirements(tmp_path):
    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    collections = install_collection(tmp_path / "installed")
    tarball = next((tmp_path / "installed" / "build").glob("openstack_dr-bank-*.tar.gz"))
    listing = subprocess.run(["tar", "tzf", str(tarball)], capture_output=True, text=True, check=True).stdout.split()
    assert "meta/execution-environment.yml" in listing and not [name for name in listing if name.startswith("tests/")]
    assert "execution-environment.yml" not in listing

    # The definition sits next to the built collection, with the collection's requirement files beside it.
    build_dir = tmp_path / "ee"
    (build_dir / "meta").mkdir(parents=True)
    shutil.copy(REPO / "execution-environment.yml", build_dir)
    for name in ("ee-requirements.txt", "ee-bindep.txt"):
        shutil.copy(REPO / "meta" / name, build_dir / "meta")
    shutil.copy(tarball, build_dir)
    created = subprocess.run([str(VENV_BIN / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", "context"],
                             cwd=build_dir, capture_output=True, text=True, timeout=300, check=False)
    assert created.returncode == 0, created.stdout + created.stderr
    context = build_dir / "context"
    containerfile = next(path for path in (context / "Containerfile", context / "Dockerfile") if path.exists())
    assert "ansible-galaxy" in containerfile.read_text() or "assemble" in containerfile.read_text()
    python = set(requirement_lines(context / "_build" / "requirements.txt"))
    assert set(requirement_lines(REPO / "meta" / "ee-requirements.txt")) <= python and "openstacksdk>=4.0.0,<5" in python
    assert set(requirement_lines(REPO / "meta" / "ee-bindep.txt")) <= set(requirement_lines(context / "_build" / "bindep.txt"))
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert galaxy["collections"] == [{"name": f"collection/{tarball.name}", "type": "file"}]
    assert (context / "_build" / "collection" / tarball.name).is_file()

    # What ansible-builder reads from the installed collection itself (meta/execution-environment.yml).
    introspected = subprocess.run([str(VENV_BIN / "ansible-builder"), "introspect", "--sanitize", str(collections)],
                                  capture_output=True, text=True, timeout=120, check=True).stdout
    found = yaml.safe_load(introspected.split("---", 1)[1])
    assert {line.split("  #")[0] for line in found["python"]} == set(requirement_lines(REPO / "meta" / "ee-requirements.txt"))
    assert [line.split("  #")[0] for line in found["system"]] == requirement_lines(REPO / "meta" / "ee-bindep.txt")


@pytest.fixture(scope="module", name="awx")
def fixture_awx(tmp_path_factory):
    """Credentials as AWX stores them, the installed collection, a volume at site A and two moto buckets."""
    sites = load_sites()
    clouds = yaml.safe_load(pathlib.Path(sites["clouds_yaml"]).read_text())["clouds"]
    with open(sites["bank_yml"], encoding="utf-8") as handle:
        moto = yaml.safe_load(handle)["moto"]
    workdir = tmp_path_factory.mktemp("awx")
    # moto takes any key: a long random one can be searched for without false hits.
    bank = {"endpoint_url": moto["endpoint_url"], "bucket": unique("e2e-awx"), "replica_bucket": unique("e2e-awx-replica"),
            "access_key": "awx-" + secrets.token_hex(4), "secret_key": secrets.token_urlsafe(30),
            "passphrase": secrets.token_urlsafe(24)}

    def openstack(cloud: dict) -> dict:
        auth = cloud["auth"]
        return {"host": auth["auth_url"], "username": auth["username"], "password": auth["password"],
                "project": auth["project_name"], "domain": auth.get("user_domain_name", "Default"),
                "region": cloud.get("region_name"), "verify_ssl": False}

    two_sites = {}
    for site, cloud in (("site_a", clouds["site-a"]), ("site_b", clouds["site-b"])):
        two_sites.update({f"{site}_auth_url": cloud["auth"]["auth_url"], f"{site}_username": cloud["auth"]["username"],
                          f"{site}_password": cloud["auth"]["password"], f"{site}_project": cloud["auth"]["project_name"],
                          f"{site}_region": cloud.get("region_name")})
    credentials = {"site-a": openstack(clouds["site-a"]), "site-b": openstack(clouds["site-b"]), "dr_bank": bank,
                   "dr_two_sites": two_sites}
    site_a, site_b = connect("site-a"), connect("site-b")
    volume = create_small_volume(site_a, unique("e2e-awx"))
    state = {"credentials": credentials, "collections": install_collection(workdir / "project-sync"), "workdir": workdir,
             "volume": volume, "site_b": site_b, "restored": [],
             "secrets": [bank["secret_key"], bank["passphrase"], clouds["site-a"]["auth"]["password"], clouds["site-b"]["auth"]["password"]],
             "bank": {"type": "s3", "endpoint_url": bank["endpoint_url"], "bucket": bank["bucket"], "access_key": bank["access_key"],
                      "secret_key": bank["secret_key"]},
             "replica": {"type": "s3", "endpoint_url": bank["endpoint_url"], "bucket": bank["replica_bucket"],
                         "access_key": bank["access_key"], "secret_key": bank["secret_key"]}}
    yield state
    for volume_id in state["restored"]:
        delete_volume(site_b, volume_id)
    delete_volume(site_a, volume.id)
    for config in (state["bank"], state["replica"]):
        remove_bucket(config)
    site_a.close()
    site_b.close()


def run_job(awx: dict, template: str, **substitutions) -> dict:
    """Launch the template; assert it succeeded and that nothing it left for AWX holds a secret."""
    result = launch(template, awx["credentials"], awx["collections"], awx["workdir"], substitutions)
    assert result.rc == 0 and result.status == "successful", f"{template}: {result.status}\n{result.tail()}"
    assert [event["event"] for event in result.events][-1] == "playbook_on_stats", template
    assert any(event["event"] == "runner_on_ok" for event in result.events), template
    texts = list(result.event_texts())
    assert any(name.startswith("job_events/") for name, dummy in texts)
    for name, text in texts:
        for secret in awx["secrets"]:
            assert secret not in text, f"{template}: a secret appears in artifacts/{template}/{name}"
    # The credential files AWX writes into env/ are readable by the job's user alone.
    data_dir = result.artifacts.parents[1]
    for path in (data_dir / "env").iterdir():
        if path.name.startswith("tmp"):
            assert path.stat().st_mode & 0o077 == 0, path
    return {"result": result, "events": result.events}


def ok_results(job: dict, action: str) -> list[dict]:
    return [event["event_data"]["res"] for event in job["events"]
            if event["event"] == "runner_on_ok" and event["event_data"].get("task_action") == action]


def test_the_runbooks_job_templates_run_through_ansible_runner_without_leaking_a_secret(awx):
    volume, suffix = awx["volume"], "awx-" + os.urandom(3).hex()
    backup_name = f"{volume.name}-{suffix}"
    templates = load_templates()[0]
    assert set(templates) >= {"dr_backup", "dr_restore", "dr_drill", "dr_sync", "dr_restore_test", "dr_cleanup"}

    run_job(awx, "dr_backup", volume=volume.name, suffix=suffix)
    assert bank_backup_names(awx["bank"], awx["credentials"]["dr_bank"]["passphrase"]) == {backup_name}

    restore_name = unique("e2e-awx-restored")
    run_job(awx, "dr_restore", backup=backup_name, restore_name=restore_name)
    restored = [v for v in awx["site_b"].block_storage.volumes() if v.name == restore_name]
    awx["restored"].extend(v.id for v in restored)
    assert len(restored) == 1 and restored[0].status == "available"

    evidence = awx["workdir"] / "evidence"
    job = run_job(awx, "dr_drill", volume=volume.name, evidence=evidence)
    report = json.loads((evidence / "drill.json").read_text())
    assert report["passed"] and report["mode"] == "full" and [v["volume"]["id"] for v in report["volumes"]] == [volume.id]
    assert junitparser.JUnitXml.fromfile(str(evidence / "drill.xml")).failures == 0
    families = {f.name for f in text_string_to_metric_families((evidence / "openstack_dr_bank_drill.prom").read_text())}
    assert "openstack_dr_bank_drill_last_success_timestamp_seconds" in families
    assert drill_volumes(awx["site_b"], report["run_id"]) == []
    assert ok_results(job, "openstack_dr.bank.drill_report"), "the drill's evidence task left no event"

    run_job(awx, "dr_sync")
    assert bank_backup_names(awx["replica"], awx["credentials"]["dr_bank"]["passphrase"]) == {backup_name}

    # Restore testing of the replica the sync just made.
    run_job(awx, "dr_restore_test", evidence=evidence)
    sample = json.loads((evidence / "sample.json").read_text())
    assert sample["passed"] and sample["mode"] == "sample"
    assert [v["backup"]["name"] for v in sample["volumes"]] == [backup_name]
    # Restore testing backs nothing up: the replica holds what the sync copied, nothing more.
    assert bank_backup_names(awx["replica"], awx["credentials"]["dr_bank"]["passphrase"]) == {backup_name}

    cleanup = run_job(awx, "dr_cleanup", backup=backup_name)
    found = ok_results(cleanup, "openstack_dr.bank.temporaries_cleanup")
    assert found and found[0]["found"] == [], "the jobs above left temporaries at site B"
