# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory bank for unit tests of the engine; real backends are proven in tests/e2e."""

from __future__ import annotations

import threading

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank, BankObject
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, BankObjectNotFoundError


class MemoryBank(Bank):
    description = "memory bank"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[str] = []
        self.fail_puts_matching: str | None = None
        self._lock = threading.Lock()

    def put(self, key, data):
        if self.fail_puts_matching is not None and self.fail_puts_matching in key:
            raise BankError(f"injected failure writing {key}")
        with self._lock:
            self.objects[key] = bytes(data)
            self.puts.append(key)

    def get(self, key):
        with self._lock:
            try:
                return self.objects[key]
            except KeyError:
                raise BankObjectNotFoundError(f"{key} not found") from None

    def exists(self, key):
        with self._lock:
            return key in self.objects

    def list(self, prefix=""):
        with self._lock:
            keys = sorted(key for key in self.objects if key.startswith(prefix))
            return iter([BankObject(key, len(self.objects[key])) for key in keys])

    def delete_many(self, keys):
        count = 0
        with self._lock:
            for key in keys:
                self.objects.pop(key, None)
                count += 1
        return count

    def chunk_puts(self) -> list[str]:
        return [key for key in self.puts if key.startswith("chunks/")]
