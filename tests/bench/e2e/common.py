# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paths, logging and deadline-bounded waits shared by the end-to-end race (``make bench-e2e``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
DEVCLOUD = ROOT / ".devcloud"
WORK = ROOT / ".cache" / "bench-e2e"
DEVCLOUD_VENV = DEVCLOUD / "venv"
DEVCLOUD_STATE = DEVCLOUD / "state"
MIB = 1024 * 1024
GIB = 1024 * MIB
# Every name the race gives a resource, bucket or container starts with this: the sweep finds them by it.
PREFIX = "bench-e2e"
# Polls of the harness's own steps (Cinder's backup, the naive path): short, so that the harness
# adds at most half a second to a contender's figure; the calls are cheap GETs.
POLL = 0.5


class BenchError(Exception):
    """A step of the race failed; the message names it."""


def log(message: str) -> None:
    print(f"bench-e2e {time.strftime('%H:%M:%S')}: {message}", flush=True)


def load_yaml(path: Path) -> Any:
    with path.open() as handle:
        return yaml.safe_load(handle)


def sites() -> dict:
    """.devcloud/sites.yml, written by ``make devcloud-up``."""
    path = DEVCLOUD / "sites.yml"
    if not path.exists():
        raise BenchError(f"{path} does not exist: run `make devcloud-up` first")
    return load_yaml(path)


def banks() -> dict:
    path = DEVCLOUD / "bank.yml"
    if not path.exists():
        raise BenchError(f"{path} does not exist: run `make bank-up` first")
    return load_yaml(path)


def wait_until(what: str, predicate: Callable[[], Any], timeout: float, interval: float = POLL) -> Any:
    """Call ``predicate`` until it returns something truthy and return that; BenchError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not done after {timeout:.0f} s")
        time.sleep(interval)


def data_timeout(size_gib: int) -> float:
    """Deadline of a step that moves a volume's data: generous (a loaded 2-core machine), never infinite."""
    return 300 + 90 * size_gib
