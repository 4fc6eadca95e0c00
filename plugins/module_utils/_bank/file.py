# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bank in a local (or mounted) directory."""

from __future__ import annotations

import os
import stat
import tempfile
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.base import Bank, BankObject
from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.object_keys import normalize_root_prefix, validate_key, validate_prefix
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import BankError, BankMissingError, InvalidInputError

# Temporary files of in-flight writes start with this; listings skip them and keys may not use it.
TEMP_PREFIX = ".bank-tmp-"


def _fsync_dir(path: str) -> None:
    # Makes the rename itself durable, not only the file's content.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBank(Bank):
    """Objects are files under ``path``; a key's ``/`` separators are directories.

    ``path``, ``create`` and ``prefix`` are the ``bank`` suboptions (doc_fragments/_bank.py); ``None`` means unset.
    """

    def __init__(self, path: str | None, create: bool | None = False, fsync: bool = True, prefix: str | None = "",
                 write_only: bool | None = False) -> None:
        self.write_only = bool(write_only)
        if not path or not isinstance(path, str):
            raise InvalidInputError("The file bank needs O(bank.path), a directory")
        self.root = os.path.abspath(os.path.expanduser(path))
        root_prefix = normalize_root_prefix(prefix).strip("/")
        if root_prefix:
            # A prefix is a subdirectory, as it is a key prefix on S3 and Swift.
            self.root = os.path.join(self.root, *root_prefix.split("/"))
        self.description = f"file bank {self.root}"
        self.fsync = fsync
        if not os.path.isdir(self.root):
            if not create:
                raise BankMissingError(self.description, "directory")
            try:
                os.makedirs(self.root, exist_ok=True)
            except OSError as exc:
                raise self._error("", "cannot create the directory", exc) from exc
        self._real_root = os.path.realpath(self.root)

    def _error(self, key: str, what: str, exc: BaseException | None = None) -> BankError:
        cause = f": {exc.strerror or exc}" if isinstance(exc, OSError) else (f": {exc}" if exc else "")
        where = f", key {key!r}" if key else ""
        return BankError(f"{self.description}{where}: {what}{cause}", bank=self.description, key=key)

    def _path(self, key: str) -> str:
        validate_key(key)
        if any(segment.startswith(TEMP_PREFIX) for segment in key.split("/")):
            raise InvalidInputError(f"Invalid bank key {key!r}: segments may not start with {TEMP_PREFIX!r}")
        path = os.path.join(self.root, *key.split("/"))
        # A symlink planted inside the bank must not lead outside it.
        parent = os.path.realpath(os.path.dirname(path))
        if parent != self._real_root and not parent.startswith(self._real_root + os.sep):
            raise InvalidInputError(f"{self.description}: key {key!r} resolves outside the bank")
        return path

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        path = self._path(key)
        directory = os.path.dirname(path)
        tmp = None
        try:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
            tmp = None
            if self.fsync:
                _fsync_dir(directory)
        except OSError as exc:
            raise self._error(key, "cannot write the object", exc) from exc
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise self.no_such_object(key) from None
        except OSError as exc:
            raise self._error(key, "cannot read the object", exc) from exc
        try:
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    raise self.no_such_object(key)
                return handle.read()
        except OSError as exc:
            raise self._error(key, "cannot read the object", exc) from exc

    def exists(self, key: str) -> bool:
        path = self._path(key)
        try:
            return stat.S_ISREG(os.lstat(path).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise self._error(key, "cannot check the object", exc) from exc

    def list(self, prefix: str = "") -> t.Iterator[BankObject]:
        validate_prefix(prefix)
        directory_part, _sep, name_start = prefix.rpartition("/")
        start_dir = os.path.join(self.root, *directory_part.split("/")) if directory_part else self.root
        base_key = f"{directory_part}/" if directory_part else ""
        yield from self._walk(start_dir, base_key, name_start)

    def _walk(self, directory: str, base_key: str, name_start: str) -> t.Iterator[BankObject]:
        try:
            with os.scandir(directory) as entries:
                children = []
                for entry in entries:
                    if entry.name.startswith(TEMP_PREFIX) or not entry.name.startswith(name_start):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        children.append((entry.name + "/", entry.name, True))
                    elif entry.is_file(follow_symlinks=False):
                        children.append((entry.name, entry.name, False))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise self._error(base_key, "cannot list the objects", exc) from exc
        # Sorting a directory as "name/" yields keys in the same byte order as S3 and Swift listings.
        children.sort()
        for _order, name, is_dir in children:
            path = os.path.join(directory, name)
            if is_dir:
                yield from self._walk(path, f"{base_key}{name}/", "")
                continue
            try:
                size = os.lstat(path).st_size
            except FileNotFoundError:
                continue  # deleted while listing
            except OSError as exc:
                raise self._error(base_key + name, "cannot list the object", exc) from exc
            yield BankObject(base_key + name, size)

    def delete_many(self, keys: t.Iterable[str]) -> int:
        count = 0
        for key in keys:
            path = self._path(key)
            try:
                os.unlink(path)
            except (FileNotFoundError, NotADirectoryError):
                pass
            except OSError as exc:
                raise self._error(key, "cannot delete the object", exc) from exc
            count += 1
        return count
