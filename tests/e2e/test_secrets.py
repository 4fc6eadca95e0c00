# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""No secret in any output: every module, on its success and failure paths, at -vvv, with cloud dicts.

Cloud dicts authenticate with a password, an application credential and a token; banks carry an S3
secret, a session token, a Swift password and the passphrase.

AWX's custom credentials hand a cloud over as a dict, so its password sits inside a raw option that
``no_log`` cannot reach. One ``ansible-playbook -vvv`` run drives every module through success,
an unreachable Keystone, a wrong project and wrong bank credentials, registers every result, and
the test greps the whole output and the registered results for each secret.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import typing as t
import uuid

import pytest
import yaml

from devcloud_fixtures import load_sites, wait_for_gone, wait_for_status  # pylint: disable=wrong-import-order
from module_runner import COLLECTIONS  # pylint: disable=wrong-import-order

STEP_TIMEOUT = 600
PASSPHRASE = f"passphrase-{uuid.uuid4().hex}"
WRONG_S3_SECRET = f"wrong-s3-secret-{uuid.uuid4().hex}"
WRONG_SWIFT_PASSWORD = f"wrong-swift-password-{uuid.uuid4().hex}"
APP_CREDENTIAL_SECRET = f"app-credential-secret-{uuid.uuid4().hex}"
WRONG_APP_CREDENTIAL_SECRET = f"wrong-app-credential-secret-{uuid.uuid4().hex}"
SESSION_TOKEN = f"session-token-{uuid.uuid4().hex}"


def cloud_dict(sites: dict, cloud: str, **auth_changes) -> dict:
    with open(sites["clouds_yaml"], encoding="utf-8") as handle:
        config = yaml.safe_load(handle)["clouds"][cloud]
    config = json.loads(json.dumps(config))
    config["auth"].update(auth_changes)
    return config


class OtherAuth(t.NamedTuple):
    """Site A's member reached by an application credential and by a token, as AWX can hand them over."""

    application_credential_id: str
    token: str


def other_auth_clouds(sites: dict, auth: OtherAuth) -> dict[str, dict]:
    base = cloud_dict(sites, "site-a")
    auth_url = base["auth"]["auth_url"]
    project = {key: base["auth"][key] for key in ("project_name", "project_domain_name") if key in base["auth"]}

    def application_credential(secret: str) -> dict:
        return dict(base, auth_type="v3applicationcredential",
                    auth={"auth_url": auth_url, "application_credential_id": auth.application_credential_id,
                          "application_credential_secret": secret})

    def token(**changes) -> dict:
        return dict(base, auth_type="v3token", auth=dict({"auth_url": auth_url, "token": auth.token}, **dict(project, **changes)))

    return {"app": application_credential(APP_CREDENTIAL_SECRET), "wrong_app": application_credential(WRONG_APP_CREDENTIAL_SECRET),
            "token": token(), "token_wrong_project": token(project_name="no-such-project")}


def playbook(sites: dict, banks: dict, volume_id: str, restore_name: str, results_path: str, scratch: str,
             other: dict[str, dict]) -> list:
    site_a, site_b = cloud_dict(sites, "site-a"), cloud_dict(sites, "site-b")
    wrong_project = cloud_dict(sites, "site-a", project_name="no-such-project")
    unreachable = cloud_dict(sites, "site-a", auth_url="http://127.0.0.1:9/v3")
    s3, wrong_s3, wrong_swift = banks["s3"], dict(banks["s3"], secret_key=WRONG_S3_SECRET), banks["wrong_swift"]
    backup = {"volume": volume_id, "backup_name": f"e2e-secrets-{restore_name}", "encryption_passphrase": PASSPHRASE, "timeout": 600}
    calls = [
        ("info_ok", "volume_info", {"cloud": site_a}, True),
        ("info_wrong_project", "volume_info", {"cloud": wrong_project}, False),
        ("cleanup_unreachable", "temporaries_cleanup", {"cloud": unreachable, "older_than": 7200}, False),
        ("cleanup_wrong_project", "temporaries_cleanup", {"cloud": wrong_project}, False),
        ("backup_ok", "volume_glance_backup", dict(backup, cloud=site_a, bank=s3), True),
        # Another name: the complete backup above would answer "unchanged" before any connection.
        ("backup_unreachable", "volume_glance_backup", dict(backup, cloud=unreachable, bank=s3, backup_name=f"e2e-secrets-no-{restore_name}"), False),
        ("backup_wrong_bank", "volume_glance_backup", dict(backup, cloud=site_a, bank=wrong_s3, backup_name=f"e2e-secrets-no-{restore_name}"), False),
        ("bank_info_ok", "bank_backup_info", {"bank": s3, "encryption_passphrase": PASSPHRASE}, True),
        ("bank_info_wrong_s3", "bank_backup_info", {"bank": wrong_s3, "encryption_passphrase": PASSPHRASE}, False),
        ("bank_info_wrong_swift", "bank_backup_info", {"bank": wrong_swift}, False),
        ("restore_ok", "volume_glance_restore", {"cloud": site_b, "bank": s3, "backup": backup["backup_name"],
                                                 "restore_name": restore_name, "encryption_passphrase": PASSPHRASE}, True),
        ("restore_wrong_project", "volume_glance_restore", {"cloud": cloud_dict(sites, "site-b", project_name="no-such-project"),
                                                            "bank": s3, "backup": backup["backup_name"],
                                                            "restore_name": restore_name, "encryption_passphrase": PASSPHRASE}, False),
        ("sync_ok", "bank_sync", {"source_bank": s3, "target_bank": {"type": "file", "path": f"{scratch}/replica", "create": True},
                                  "encryption_passphrase": PASSPHRASE}, True),
        ("sync_wrong_source", "bank_sync", {"source_bank": wrong_s3, "target_bank": {"type": "file", "path": f"{scratch}/replica"},
                                            "encryption_passphrase": PASSPHRASE}, False),
        ("sync_wrong_target", "bank_sync", {"source_bank": s3, "target_bank": dict(wrong_swift, create=True),
                                            "encryption_passphrase": PASSPHRASE}, False),
        ("drill_report_ok", "drill_report", {"run_id": f"e2e-secrets-{restore_name}", "json_path": f"{scratch}/drill.json",
                                             "volumes": [{"volume": {"id": volume_id, "name": restore_name}}]}, True),
        ("info_app_credential", "volume_info", {"cloud": other["app"]}, True),
        ("info_wrong_app_credential", "volume_info", {"cloud": other["wrong_app"]}, False),
        ("cleanup_wrong_app_credential", "temporaries_cleanup", {"cloud": other["wrong_app"]}, False),
        ("info_token", "volume_info", {"cloud": other["token"]}, True),
        ("cleanup_token_wrong_project", "temporaries_cleanup", {"cloud": other["token_wrong_project"]}, False),
        # Swift's S3 API may or may not look at a session token: either way it must not be printed.
        ("bank_info_session_token", "bank_backup_info", {"bank": dict(s3, session_token=SESSION_TOKEN),
                                                         "encryption_passphrase": PASSPHRASE}, None),
        ("delete_wrong_s3", "bank_delete", {"bank": wrong_s3, "backup": backup["backup_name"], "encryption_passphrase": PASSPHRASE}, False),
        ("delete_ok", "bank_delete", {"bank": s3, "backup": backup["backup_name"], "encryption_passphrase": PASSPHRASE,
                                      "prune": True}, True),
    ]
    tasks = [{"name": name, f"openstack_dr.bank.{module}": args, "register": name, "ignore_errors": True}
             for name, module, args, dummy in calls]
    tasks.append({"name": "Keep every registered result", "ansible.builtin.copy": {
        "dest": results_path, "mode": "0600",
        "content": "{{ " + "{" + ", ".join(f"'{name}': {name}" for name, *dummy in calls) + "} | to_json }}"}})
    return [{"name": "Every module, with cloud dicts", "hosts": "localhost", "gather_facts": False, "tasks": tasks}], calls


@pytest.fixture(name="small_volume")
def fixture_small_volume():
    from devcloud_fixtures import connect  # pylint: disable=import-outside-toplevel
    conn = connect("site-a")
    volume = conn.block_storage.create_volume(name=f"e2e-secrets-{uuid.uuid4().hex[:8]}", size=1)
    wait_for_status(lambda: conn.block_storage.get_volume(volume.id), "available", STEP_TIMEOUT, "the small volume")
    yield volume.id
    conn.block_storage.delete_volume(volume.id, ignore_missing=True)
    wait_for_gone(lambda: conn.block_storage.get_volume(volume.id), STEP_TIMEOUT, "the small volume")
    conn.close()


@pytest.fixture(name="other_auth")
def fixture_other_auth():
    """An application credential of site A's member (removed afterwards) and a token of that member."""
    from devcloud_fixtures import connect  # pylint: disable=import-outside-toplevel
    conn = connect("site-a")
    name = f"e2e-secrets-{uuid.uuid4().hex[:8]}"
    credential = conn.identity.create_application_credential(conn.current_user_id, name=name, secret=APP_CREDENTIAL_SECRET)
    yield OtherAuth(credential.id, conn.auth_token)
    conn.identity.delete_application_credential(conn.current_user_id, credential.id)
    conn.close()


def test_no_secret_appears_at_vvv_in_any_module_path(tmp_path, small_volume, other_auth):
    sites = load_sites()
    with open(sites["bank_yml"], encoding="utf-8") as handle:
        servers = yaml.safe_load(handle)
    suffix = uuid.uuid4().hex[:8]
    banks = {
        "s3": dict(servers["swift_s3"], bucket=f"e2e-secrets-{suffix}", create=True),
        "wrong_swift": {"type": "swift", "container": f"e2e-secrets-{suffix}",
                        "cloud": dict(servers["swift"]["cloud"], auth=dict(servers["swift"]["cloud"]["auth"], password=WRONG_SWIFT_PASSWORD))},
    }
    restore_name = f"e2e-secrets-restored-{suffix}"
    results_path = tmp_path / "results.json"
    plays, calls = playbook(sites, banks, small_volume, restore_name, str(results_path), str(tmp_path),
                            other_auth_clouds(sites, other_auth))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", OS_CLIENT_CONFIG_FILE="/nonexistent/clouds.yaml")
    command = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-vvv", "-i", "localhost,", "-c", "local",
               "-e", f"ansible_python_interpreter={sys.executable}", str(tmp_path / "play.yml")]
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800, check=False)
    output = completed.stdout + completed.stderr
    try:
        results = json.loads(results_path.read_text())
    except (OSError, ValueError) as exc:
        raise AssertionError(f"the playbook wrote no results ({exc}):\n{output[-4000:]}") from exc
    try:
        # Every path ran as intended: a path that did not fail proves nothing about its failure message.
        for name, module, dummy, succeeds in calls:
            if succeeds is not None:
                assert bool(results[name].get("failed")) is not succeeds, (name, module, results[name].get("msg"))
        member_password = cloud_dict(sites, "site-a")["auth"]["password"]
        secrets = {"cloud password": member_password, "S3 secret": banks["s3"]["secret_key"], "wrong S3 secret": WRONG_S3_SECRET,
                   "wrong Swift password": WRONG_SWIFT_PASSWORD, "passphrase": PASSPHRASE,
                   "application credential secret": APP_CREDENTIAL_SECRET, "wrong application credential secret": WRONG_APP_CREDENTIAL_SECRET,
                   "token": other_auth.token, "S3 session token": SESSION_TOKEN}
        registered = json.dumps(results)
        found = {what: (output.count(value), registered.count(value)) for what, value in secrets.items()}
        assert all(counts == (0, 0) for counts in found.values()), found
        # The invocation is printed at -vvv, masked: the proof that the arguments were there to leak.
        for key in ("password", "application_credential_secret", "token", "session_token"):
            assert f'"{key}": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in output, f"no masked {key} in the -vvv output"
    finally:
        from devcloud_fixtures import connect  # pylint: disable=import-outside-toplevel
        site_b = connect("site-b")
        for volume in site_b.block_storage.volumes():
            if volume.name == restore_name:
                site_b.block_storage.delete_volume(volume.id)
                wait_for_gone(lambda v=volume: site_b.block_storage.get_volume(v.id), STEP_TIMEOUT, "the restored volume")
        site_b.close()
