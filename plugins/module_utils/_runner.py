# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where the collection's exceptions become ``fail_json``."""

from __future__ import annotations

import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule, _load_params

from ansible_collections.openstack_dr.bank.plugins.module_utils import _notices as notices
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import DrBankError
from ansible_collections.openstack_dr.bank.plugins.module_utils._inputs import holds_secrets, unparsable_dicts

#: Given the module's validated params, the secret strings that no_log cannot reach (inside raw or dict options).
Secrets = t.Callable[[t.Mapping[str, t.Any]], t.Iterable[str]]


class SecretMaskingModule(AnsibleModule):
    """An AnsibleModule that knows the secrets nested in raw or dict options before it logs anything.

    AnsibleModule logs its invocation (syslog, journal) at the end of its constructor, before the
    caller could add to ``no_log_values``: the secrets are registered in that hook instead, right
    after the parameters are validated.
    """

    def __init__(self, *args: t.Any, secrets: Secrets | None = None, **kwargs: t.Any) -> None:
        self._find_secrets = secrets
        super().__init__(*args, **kwargs)
        self.register_secrets()

    def register_secrets(self) -> None:
        if self._find_secrets is not None:
            self.no_log_values.update(str(value) for value in self._find_secrets(self.params) if value)

    def _log_invocation(self) -> None:
        self.register_secrets()
        super()._log_invocation()


def run_module(
    argument_spec: dict,
    flow: t.Callable[[AnsibleModule], dict],
    secrets: Secrets | None = None,
    **module_options: t.Any,
) -> None:
    """Build the module, run ``flow`` and exit with its result or with a clear failure.

    ``secrets(params)`` names values to mask wherever they would appear (invocation log, result,
    failure, warnings): AnsibleModule replaces every registered value in what it returns.
    """
    # Ansible's own refusal of a string given for a dict with suboptions does not name the option.
    # (validate-modules introspects the spec with no parameters at all.)
    not_dicts = unparsable_dicts(argument_spec, _load_params() or {})
    if not_dicts:
        # Taken as it is, so the module starts and fails by name; masked if the dict would hold secrets.
        argument_spec = dict(argument_spec, **{name: {"type": "raw", "no_log": holds_secrets(argument_spec[name])} for name in not_dicts})
    module = SecretMaskingModule(argument_spec=argument_spec, supports_check_mode=True, secrets=secrets, **module_options)
    if not_dicts:
        module.fail_json(msg=f"{not_dicts[0]} must be a dict (what was given is neither a mapping nor JSON or key=value text)", error_type="InvalidInputError",
                         option=not_dicts[0])
    try:
        result = flow(module)
    except DrBankError as exc:
        details = {key: value for key, value in exc.details.items() if value is not None}
        warn_notices(module)
        module.fail_json(msg=str(exc), error_type=type(exc).__name__, **details)
    except KeyboardInterrupt:
        warn_notices(module)
        module.fail_json(msg="Interrupted", exception=traceback.format_exc())
    except Exception as exc:  # pylint: disable=broad-exception-caught
        # A bug, not bad input: still answered here, so the registered secrets are masked in it too.
        warn_notices(module)
        module.fail_json(msg=f"Unexpected error ({type(exc).__name__}: {exc}); please report it with the traceback",
                         error_type=type(exc).__name__, exception=traceback.format_exc())
    warn_notices(module)
    module.exit_json(**result)


def warn_notices(module: AnsibleModule) -> None:
    """What the run did that its operator should hear of (``_notices``), as Ansible warnings."""
    for notice in notices.take():
        module.warn(notice)
