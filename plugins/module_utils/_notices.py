# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Things a run did that its operator should hear of, wherever they happened (a broken stale lock).

Deep layers add a line here instead of threading a warning list through every call; the runner
turns them into Ansible warnings when the module answers, on success and on failure.
"""

from __future__ import annotations

_PENDING: list[str] = []


def add(notice: str) -> None:
    _PENDING.append(notice)


def take() -> list[str]:
    """Every notice added since the last call, oldest first."""
    taken = list(_PENDING)
    _PENDING.clear()
    return taken
