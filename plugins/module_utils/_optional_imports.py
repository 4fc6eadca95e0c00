# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Third-party libraries that may be missing where a module runs: imported once, failing later with a clear message."""

from __future__ import annotations

import importlib
import traceback
import types


def optional_import(name: str) -> tuple[types.ModuleType | None, str | None]:
    """(the module, None), or (None, the import error's traceback) when it cannot be imported."""
    try:
        return importlib.import_module(name), None
    except ImportError:
        return None, traceback.format_exc()


zstandard, ZSTANDARD_IMPORT_ERROR = optional_import("zstandard")
HAS_ZSTANDARD = zstandard is not None
aead, CRYPTOGRAPHY_IMPORT_ERROR = optional_import("cryptography.hazmat.primitives.ciphers.aead")
cryptography_exceptions, _unused = optional_import("cryptography.exceptions")
HAS_CRYPTOGRAPHY = aead is not None and cryptography_exceptions is not None
