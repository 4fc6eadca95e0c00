# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where the collection's exceptions become ``fail_json``."""

from __future__ import annotations

import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DrBankError

#: Given the module's validated params, the secret strings that no_log cannot reach (inside raw or dict options).
Secrets = t.Callable[[t.Mapping[str, t.Any]], t.Iterable[str]]


def run_module(
    argument_spec: dict,
    flow: t.Callable[[AnsibleModule], dict],
    secrets: Secrets | None = None,
    **module_options: t.Any,
) -> None:
    """Build the module, run ``flow`` and exit with its result or with a clear failure.

    ``secrets(params)`` names values to mask wherever they would appear (result, failure, warnings).
    """
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **module_options)
    if secrets is not None:
        module.no_log_values.update(str(value) for value in secrets(module.params))
    try:
        result = flow(module)
    except DrBankError as exc:
        details = {key: value for key, value in exc.details.items() if value is not None}
        module.fail_json(msg=str(exc), error_type=type(exc).__name__, **details)
    except KeyboardInterrupt:
        module.fail_json(msg="Interrupted", exception=traceback.format_exc())
    module.exit_json(**result)
