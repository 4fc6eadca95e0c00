# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Descriptions of the attributes every module documents; each module states its support."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return a truthful prediction of what would change, without changing anything.
  diff_mode:
    description: Returns details on what has changed (or would change in C(check_mode)), when in diff mode.
  idempotent:
    description: Running the module twice with the same arguments changes nothing the second time.
  action_group:
    description: Use C(group/openstack_dr.bank.bank) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - openstack_dr.bank.bank
"""
