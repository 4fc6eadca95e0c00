# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launch the runbook's job templates as AWX does: a private data dir, credentials injected, ansible-runner.

tests/awx/ holds the private data dir template (inventory/hosts, env/settings, env/envvars, env/extravars,
project/), the credential types (credential_types.yml) and the job templates (job_templates.yml). For each
launch this builds a fresh private data dir from them the way AWX's job run does:
- project/: the repository's playbooks, as the project's SCM checkout holds them;
- the collection from ``requirements_collections`` (installed once per test session from the built
  tarball, as AWX installs a project's collections at project sync), on ANSIBLE_COLLECTIONS_PATH;
- the OpenStack credential: one clouds.yaml in env/ (mode 0600) whose single cloud is named ``devstack``,
  OS_CLIENT_CONFIG_FILE pointing at it (AWX's injector);
- custom credential types: each ``file`` injector rendered into a file in env/, ``env`` injectors into
  env/envvars, ``extra_vars`` injectors into a file in env/ passed as ``-e @file`` on the command line
  (env/cmdline), all rendered with Jinja2 from the credential's inputs;
- the job template's extra vars in env/extravars, its limit as ``--limit``.
then runs ``ansible-runner run <private_data_dir> -p <playbook> --limit <limit> --ident <ident>``.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile
import typing as t
import uuid

import jinja2
import jinja2.sandbox
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
AWX = REPO / "tests" / "awx"
VENV_BIN = pathlib.Path(sys.executable).parent


class JobResult(t.NamedTuple):
    rc: int
    status: str
    stdout: str
    events: list[dict]
    artifacts: pathlib.Path

    def event_texts(self) -> t.Iterator[tuple[str, str]]:
        """(file, text) of everything the job left for AWX to store: events, stdout, command, status."""
        for path in sorted(self.artifacts.rglob("*")):
            if path.is_file():
                yield str(path.relative_to(self.artifacts)), path.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.stdout.splitlines()[-lines:])


def load_templates() -> tuple[dict, dict]:
    return (yaml.safe_load((AWX / "job_templates.yml").read_text()),
            yaml.safe_load((AWX / "credential_types.yml").read_text()))


def install_collection(where: pathlib.Path) -> pathlib.Path:
    """Build the collection and install it as a project sync installs collections/requirements.yml."""
    env = dict(os.environ, HOME=str(REPO / ".cache" / "home"), ANSIBLE_COLLECTIONS_PATH=str(where / "none"))
    build = where / "build"
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(build), str(REPO)],
                   check=True, capture_output=True, env=env, timeout=300)
    tarball = next(build.glob("openstack_dr-bank-*.tar.gz"))
    installed = where / "requirements_collections"
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(installed), "--no-deps"],
                   check=True, capture_output=True, env=env, timeout=300)
    return installed


def _private_file(directory: pathlib.Path, text: str) -> pathlib.Path:
    handle, path = tempfile.mkstemp(dir=directory)
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return pathlib.Path(path)


def _render(value: t.Any, context: dict) -> t.Any:
    # AWX renders injector templates in a Jinja2 sandbox with the credential's inputs.
    if isinstance(value, str):
        return jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined).from_string(value).render(**context)
    if isinstance(value, dict):
        return {key: _render(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, context) for item in value]
    return value


def _inject_openstack(inputs: dict, env_dir: pathlib.Path, envvars: dict) -> None:
    """AWX's built-in OpenStack injector: a clouds.yaml with one cloud, devstack."""
    auth = {"auth_url": inputs["host"], "username": inputs["username"], "password": inputs["password"],
            "project_name": inputs["project"]}
    if inputs.get("domain"):
        auth["domain_name"] = inputs["domain"]
    cloud: dict[str, t.Any] = {"auth": auth, "verify": inputs.get("verify_ssl", True)}
    if inputs.get("region"):
        cloud["region_name"] = inputs["region"]
    path = _private_file(env_dir, yaml.safe_dump({"clouds": {"devstack": cloud}}, default_flow_style=False))
    envvars["OS_CLIENT_CONFIG_FILE"] = str(path)


def _inject_custom(kind: dict, inputs: dict, env_dir: pathlib.Path, envvars: dict, cmdline: list[str]) -> None:
    injectors = kind["injectors"]
    filenames = {}
    for key, template in (injectors.get("file") or {}).items():
        path = _private_file(env_dir, _render(template, inputs))
        filenames[key.split(".", 1)[1] if "." in key else "filename"] = str(path)
    context = dict(inputs, tower={"filename": filenames if len(filenames) > 1 or "filename" not in filenames
                                  else filenames["filename"]})
    for name, template in (injectors.get("env") or {}).items():
        envvars[name] = _render(template, context)
    if injectors.get("extra_vars"):
        path = _private_file(env_dir, json.dumps(_render(injectors["extra_vars"], context)))
        cmdline.extend(["-e", f"@{path}"])


def launch(template_name: str, credentials: dict[str, dict], collections: pathlib.Path, workdir: pathlib.Path,
           substitutions: dict[str, t.Any] | None = None, timeout: float = 1800) -> JobResult:
    """Launch one job template of tests/awx/job_templates.yml; ``credentials`` maps credential names to inputs."""
    templates, kinds = load_templates()
    template = templates[template_name]
    data_dir = workdir / f"awx_{template_name}_{uuid.uuid4().hex[:8]}"
    shutil.copytree(AWX / "private_data_dir", data_dir)
    shutil.copytree(REPO / "playbooks", data_dir / "project" / "playbooks")
    env_dir = data_dir / "env"
    envvars = yaml.safe_load((env_dir / "envvars").read_text())
    envvars["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    envvars["AWX_TEST_PYTHON"] = sys.executable
    cmdline: list[str] = []
    for entry in template["credentials"]:
        name, label = (next(iter(entry.items())) if isinstance(entry, dict) else (entry, entry))
        if kinds[name].get("builtin"):
            _inject_openstack(credentials[label], env_dir, envvars)
        else:
            _inject_custom(kinds[name], credentials[label], env_dir, envvars, cmdline)
    extra = dict(yaml.safe_load((env_dir / "extravars").read_text()), awx_job_template_name=template["name"],
                 tower_job_template_name=template["name"], awx_job_id=int(uuid.uuid4().int % 100000))
    extra.update(_substitute(template["extra_vars"], substitutions or {}))
    (env_dir / "extravars").write_text(yaml.safe_dump(extra))
    (env_dir / "envvars").write_text(yaml.safe_dump(envvars))
    if cmdline:
        (env_dir / "cmdline").write_text(" ".join(cmdline))
    ident = template_name
    command = [str(VENV_BIN / "ansible-runner"), "run", str(data_dir), "-p", template["playbook"], "--limit", template["limit"],
               "--ident", ident]
    run_env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    for leaked in ("OS_CLIENT_CONFIG_FILE", "ANSIBLE_COLLECTIONS_PATH"):
        run_env.pop(leaked, None)
    completed = subprocess.run(command, capture_output=True, text=True, env=run_env, timeout=timeout, check=False)
    artifacts = data_dir / "artifacts" / ident
    events = sorted((json.loads(path.read_text()) for path in (artifacts / "job_events").glob("*.json")),
                    key=lambda event: event.get("counter", 0))
    status = (artifacts / "status").read_text().strip() if (artifacts / "status").exists() else "missing"
    rc = int((artifacts / "rc").read_text()) if (artifacts / "rc").exists() else completed.returncode
    stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else completed.stdout + completed.stderr
    return JobResult(rc, status, stdout, events, artifacts)


def _substitute(value: t.Any, substitutions: dict[str, t.Any]) -> t.Any:
    """Replace the test's <placeholders> in a template's extra vars."""
    if isinstance(value, str):
        for key, replacement in substitutions.items():
            if value == f"<{key}>":
                return replacement
            value = value.replace(f"<{key}>", str(replacement))
        return value
    if isinstance(value, dict):
        return {key: _substitute(item, substitutions) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, substitutions) for item in value]
    return value
