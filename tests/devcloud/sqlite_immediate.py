# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Devcloud only: oslo.db's BEGIN becomes BEGIN IMMEDIATE (see SQLITE_HOOK_MODULE in devcloud.py).

devcloud.py copies this file into the devcloud venv as devcloud_sqlite_immediate.py, loaded by a .pth file.
"""

from __future__ import annotations

import sqlite3
import sqlite3.dbapi2
import sys

_announced = []


class _ImmediateCursor(sqlite3.Cursor):
    def execute(self, sql, *args):
        if isinstance(sql, str) and sql.strip().upper() == "BEGIN":
            sql = "BEGIN IMMEDIATE"
            if not _announced:
                _announced.append(True)
                sys.stderr.write("devcloud: sqlite transactions begin immediate\n")
        return super().execute(sql, *args)


class _ImmediateConnection(sqlite3.Connection):
    def cursor(self, factory=_ImmediateCursor):
        return super().cursor(factory)


_plain_connect = sqlite3.dbapi2.connect


def connect(*args, **kwargs):
    kwargs.setdefault("factory", _ImmediateConnection)
    return _plain_connect(*args, **kwargs)


sqlite3.connect = sqlite3.dbapi2.connect = connect
