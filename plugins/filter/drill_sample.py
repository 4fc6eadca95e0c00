# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill_sample filter: the documentation is in drill_sample.yml beside this file."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.openstack_dr.bank.plugins.module_utils._drill_sample import sample_backups
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DrBankError


def drill_sample(backups: t.Any, count: int = 1, strategy: str = "newest", seed: t.Any = None,
                 volumes: t.Any = None, exclude: t.Any = None) -> list[dict[str, t.Any]]:
    if not isinstance(backups, list):
        raise AnsibleFilterError(f"drill_sample expects the list of backups bank_backup_info returns, not {type(backups).__name__}")
    try:
        return sample_backups(backups, int(count), strategy, seed, volumes or [], exclude or [])
    except DrBankError as exc:
        raise AnsibleFilterError(f"drill_sample: {exc}") from exc


class FilterModule:
    """Filters of openstack_dr.bank."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"drill_sample": drill_sample}
