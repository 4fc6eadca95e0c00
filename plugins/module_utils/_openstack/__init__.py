# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenStack steps (Cinder, Glance, Keystone) of the collection; private API.

Nothing here knows about chunks or banks: modules compose these steps with the chunk engine.
"""

from __future__ import annotations
