# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_module: a flow's result or domain error becomes the module's answer, with the secrets it is handed masked."""

from __future__ import annotations

import ast
import json
import pathlib
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.openstack_dr.bank.plugins.module_utils import _runner
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError
from ansible_collections.openstack_dr.bank.plugins.module_utils._runner import run_module

SPEC = dict(cloud=dict(type="raw"), name=dict(type="str"))
ARGS = {"cloud": {"auth": {"password": "hunter2"}}, "name": "n"}


def answer(capsys: pytest.CaptureFixture, flow: t.Callable, secrets: t.Callable | None = None) -> tuple[int, dict]:
    with patch_module_args(ARGS), pytest.raises(SystemExit) as info:
        run_module(SPEC, flow, secrets=secrets)
    return info.value.code, json.loads(capsys.readouterr().out)


def password_of(params: t.Mapping[str, t.Any]) -> list[str]:
    return [params["cloud"]["auth"]["password"]]


def test_the_flow_result_is_the_module_result(capsys: pytest.CaptureFixture) -> None:
    code, result = answer(capsys, lambda module: {"changed": True, "name": module.params["name"]})
    assert code == 0 and result["changed"] is True and result["name"] == "n"


def test_a_domain_error_fails_with_its_type_and_details(capsys: pytest.CaptureFixture) -> None:
    def flow(module) -> dict:
        raise BankError("s3 bank x: cannot read the object", bank="s3 bank x", key=None)

    code, result = answer(capsys, flow)
    assert code == 1 and result["failed"] is True
    assert result["msg"] == "s3 bank x: cannot read the object" and result["error_type"] == "BankError"
    assert result["bank"] == "s3 bank x" and "key" not in result


def test_the_secrets_handed_over_are_masked_in_results_and_failures(capsys: pytest.CaptureFixture) -> None:
    _code, result = answer(capsys, lambda module: {"changed": False, "echo": "pw hunter2"}, secrets=password_of)
    assert "hunter2" not in json.dumps(result)

    def flow(module) -> dict:
        raise BankError("login as hunter2 failed")

    _code, result = answer(capsys, flow, secrets=password_of)
    assert "hunter2" not in json.dumps(result) and result["msg"].startswith("login as ")


def test_without_secrets_only_no_log_options_are_masked(capsys: pytest.CaptureFixture) -> None:
    _code, result = answer(capsys, lambda module: {"changed": False, "echo": "pw hunter2"})
    assert result["echo"] == "pw hunter2"


def test_the_runner_knows_no_bank() -> None:
    tree = ast.parse(pathlib.Path(_runner.__file__).read_text(encoding="utf-8"))
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if "._bank" in name]


def test_an_unexpected_error_is_answered_with_the_secrets_masked(capsys: pytest.CaptureFixture) -> None:
    def flow(module) -> dict:
        raise ValueError("connect timeout for hunter2 is -1")

    code, result = answer(capsys, flow, secrets=password_of)
    assert code == 1 and result["error_type"] == "ValueError"
    assert "Unexpected error" in result["msg"] and "hunter2" not in json.dumps(result)


def test_the_invocation_log_already_masks_nested_secrets(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    logged: list[str] = []
    monkeypatch.setattr(_runner.SecretMaskingModule, "log", lambda self, msg, log_args=None: logged.append(msg))
    answer(capsys, lambda module: {"changed": False}, secrets=password_of)
    assert logged and logged[0].startswith("Invoked with") and "cloud=" in logged[0]
    assert "hunter2" not in logged[0]


def test_notices_of_deep_layers_become_warnings(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from ansible_collections.openstack_dr.bank.plugins.module_utils import _notices  # pylint: disable=import-outside-toplevel

    # Under pytest Ansible believes it runs on the controller and prints warnings instead of returning them.
    warned: list[str] = []
    monkeypatch.setattr(_runner.SecretMaskingModule, "warn", lambda self, warning: warned.append(warning))

    def flow(module) -> dict:
        _notices.add("Broke the stale bank lock of backup x on vm pid 7749")
        return {"changed": False}

    answer(capsys, flow)
    assert warned == ["Broke the stale bank lock of backup x on vm pid 7749"]

    def failing(module) -> dict:
        _notices.add("Broke the stale bank lock of prune on vm pid 1")
        raise BankError("then the bank failed")

    _code, result = answer(capsys, failing)
    assert result["failed"] and warned[1:] == ["Broke the stale bank lock of prune on vm pid 1"]
    assert _notices.take() == []
