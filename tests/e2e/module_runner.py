# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the collection's modules for real, through the ``ansible`` command, and returns their results."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".cache" / "collections"


class ModuleRun:
    def __init__(self, result: dict, stdout: str, stderr: str, returncode: int = 0) -> None:
        self.result = result
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def failed(self) -> bool:
        # The tree callback stores the module's own result, which has no "failed" key: the exit code tells.
        return self.returncode != 0 or bool(self.result.get("failed"))

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)


def _command(name: str, args: dict, check: bool) -> list[str]:
    command = [
        str(pathlib.Path(sys.executable).parent / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
        "-m", f"openstack_dr.bank.{name}", "-a", json.dumps(args),
        "-e", f"ansible_python_interpreter={sys.executable}",
    ]
    if check:
        command.append("--check")
    return command


def _environment(tree: str, env: dict | None) -> dict:
    # The tree callback writes each host's result as JSON: the module's own result, unprinted.
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                       ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree", ANSIBLE_CALLBACK_TREE_DIR=tree,
                       ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    environment.update(env or {})
    return environment


def run_module(name: str, args: dict, check: bool = False, env: dict | None = None, timeout: float = 1800) -> ModuleRun:
    """Run ``openstack_dr.bank.<name>`` on localhost with the test venv's Python; never raises on module failure."""
    with tempfile.TemporaryDirectory() as tree:
        completed = subprocess.run(_command(name, args, check), capture_output=True, text=True,
                                   env=_environment(tree, env), timeout=timeout, check=False)
        try:
            result = json.loads((pathlib.Path(tree) / "localhost").read_text())
        except (OSError, ValueError) as exc:
            raise AssertionError(f"ansible wrote no result ({exc}):\n{completed.stdout}\n{completed.stderr}") from exc
    return ModuleRun(result, completed.stdout, completed.stderr, completed.returncode)


def start_module(name: str, args: dict, tree: str, env: dict | None = None) -> subprocess.Popen:
    """Start ``ansible`` running the module in a process group of its own (as AWX runs a job), without waiting.

    ``os.killpg(process.pid, signal.SIGTERM)`` then interrupts it as a supervisor stopping the job would.
    """
    return subprocess.Popen(_command(name, args, False), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_environment(tree, env), start_new_session=True)


def signal_process_tree(pid: int, signum: int) -> None:
    """Send `signum` to `pid` and every process below it.

    ansible-core 2.19 starts module workers in a session of their own, so signalling ansible's
    process group would miss the module: a supervisor stopping a job reaches the whole tree.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    tree = [pid]
    for member in tree:
        tree.extend(children.get(member, []))
    for member in tree:
        try:
            os.kill(member, signum)
        except ProcessLookupError:
            pass
