# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where the collection's exceptions become ``fail_json``."""

from __future__ import annotations

import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openstack_dr.bank.plugins.module_utils._bank.options import bank_no_log_values
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DrBankError


def run_module(argument_spec: dict, flow: t.Callable[[AnsibleModule], dict], **module_options: t.Any) -> None:
    """Build the module, run ``flow`` and exit with its result or with a clear failure."""
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **module_options)
    if module.params.get("bank"):
        # Secrets nested in a bank's cloud dict are masked wherever they would appear.
        module.no_log_values.update(bank_no_log_values(module.params["bank"]))
    try:
        result = flow(module)
    except DrBankError as exc:
        details = {key: value for key, value in exc.details.items() if value is not None}
        module.fail_json(msg=str(exc), error_type=type(exc).__name__, **details)
    except KeyboardInterrupt:
        module.fail_json(msg="Interrupted", exception=traceback.format_exc())
    module.exit_json(**result)
