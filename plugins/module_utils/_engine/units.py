# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Binary size units, the one spelling of them in the collection, and the chunk sizes built on them.

The chunk sizes here are the source the modules' argument specs, the roles and the docs derive from.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
TIB = 1024 * GIB

ALLOWED_CHUNK_SIZES = tuple(MIB << power for power in range(7))  # 1 MiB .. 64 MiB
DEFAULT_CHUNK_SIZE = 4 * MIB
# The same, in the MiB the modules' chunk_size option is given in.
CHUNK_SIZE_CHOICES_MIB = [size // MIB for size in ALLOWED_CHUNK_SIZES]
DEFAULT_CHUNK_SIZE_MIB = DEFAULT_CHUNK_SIZE // MIB
