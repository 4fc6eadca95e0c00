# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small in-memory stand-in for an openstacksdk Connection (only what the pure-logic tests need)."""

from __future__ import annotations

import types
import typing as t

from openstack import exceptions as sdk_exceptions


def resource(**fields: t.Any) -> types.SimpleNamespace:
    fields.setdefault("name", None)
    fields.setdefault("status", "available")
    fields.setdefault("metadata", {})
    return types.SimpleNamespace(**fields)


class FakeService:
    """Resources by kind; delete removes them, `fail_delete` ids raise instead."""

    def __init__(self, log: list[tuple[str, str]], kind_prefix: str) -> None:
        self.items: dict[str, dict[str, t.Any]] = {}
        self.log = log
        self.fail_delete: set[str] = set()
        # id -> how many deletes answer 500 first (a busy Glance/Cinder database).
        self.busy_deletes: dict[str, int] = {}
        self.kind_prefix = kind_prefix

    def _get(self, kind: str, resource_id: str) -> t.Any:
        found = self.items.get(kind, {}).get(getattr(resource_id, "id", resource_id))
        if found is None:
            raise sdk_exceptions.NotFoundException(f"{kind} {resource_id} not found")
        return found

    def _delete(self, kind: str, resource_id: str) -> None:
        self.log.append((kind, resource_id))
        if resource_id in self.fail_delete:
            raise sdk_exceptions.HttpException(f"cannot delete {kind} {resource_id}")
        if self.busy_deletes.get(resource_id, 0) > 0:
            self.busy_deletes[resource_id] -= 1
            raise sdk_exceptions.HttpException("database is locked", http_status=500)
        self.items.get(kind, {}).pop(resource_id, None)

    def add(self, kind: str, item: t.Any) -> t.Any:
        self.items.setdefault(kind, {})[item.id] = item
        return item


class FakeBlockStorage(FakeService):
    def get_volume(self, volume_id: str) -> t.Any:
        return self._get("volume", volume_id)

    def get_snapshot(self, snapshot_id: str) -> t.Any:
        return self._get("snapshot", snapshot_id)

    def delete_volume(self, volume_id: str, ignore_missing: bool = True) -> None:
        self._delete("volume", volume_id)

    def delete_snapshot(self, snapshot_id: str, ignore_missing: bool = True) -> None:
        self._delete("snapshot", snapshot_id)

    def volumes(self, details: bool = True, **query: t.Any) -> list[t.Any]:
        return [v for v in self.items.get("volume", {}).values() if all(getattr(v, k, None) == q for k, q in query.items())]

    def snapshots(self, details: bool = True) -> list[t.Any]:
        return list(self.items.get("snapshot", {}).values())

    def types(self) -> list[t.Any]:
        return list(self.items.get("type", {}).values())

    def get_type(self, type_id: str) -> t.Any:
        if type_id == "default":
            return next(v for v in self.items.get("type", {}).values() if getattr(v, "is_default", False))
        return self._get("type", type_id)


class FakeImage(FakeService):
    def get_image(self, image_id: str) -> t.Any:
        return self._get("image", image_id)

    def delete_image(self, image_id: str, ignore_missing: bool = True) -> None:
        self._delete("image", image_id)

    def images(self) -> list[t.Any]:
        return list(self.items.get("image", {}).values())


class FakeConnection:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []
        self.block_storage = FakeBlockStorage(self.deleted, "bs")
        self.image = FakeImage(self.deleted, "image")
        self.config = types.SimpleNamespace(name="site-x", region_name="RegionX")
