# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's EXAMPLES are tasks its argument spec accepts.

An example is what operators paste. ansible-test sanity checks that EXAMPLES is YAML, not that its
options exist: an example once listed an option's description as its options. Each task here is
validated the way Ansible validates a module's arguments (names, types, choices, required options,
the bank's suboptions), with every Jinja2 expression replaced by a value of the right type.
"""

from __future__ import annotations

import importlib
import pathlib
import typing as t

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

MODULES = sorted(path.stem for path in (pathlib.Path(__file__).resolve().parents[4] / "plugins" / "modules").glob("*.py")
                 if not path.name.startswith("_"))
PREFIX = "openstack_dr.bank."


def module_of(name: str) -> t.Any:
    return importlib.import_module(f"ansible_collections.openstack_dr.bank.plugins.modules.{name}")


def tasks_of(tasks: list) -> t.Iterator[dict]:
    for task in tasks or []:
        yield task
        for section in ("block", "rescue", "always"):
            yield from tasks_of(task.get(section) or [])


def stand_in(value: t.Any, spec: dict) -> t.Any:
    """A templated value replaced by one of the type the option takes (what the template renders to)."""
    if isinstance(value, str) and "{{" in value:
        kind = spec.get("type", "str")
        if spec.get("choices"):
            return spec["choices"][0]
        if kind == "dict" and "path" in (spec.get("options") or {}):
            return {"type": "file", "path": "/srv/dr-bank"}  # a templated bank
        return {"int": 1, "float": 1.0, "bool": True, "list": [], "dict": {}, "raw": "x"}.get(kind, "x")
    if isinstance(value, dict) and spec.get("options"):
        return {key: stand_in(item, spec["options"].get(key, {})) for key, item in value.items()}
    return value


def example_calls(name: str) -> list[dict]:
    examples = yaml.safe_load(module_of(name).EXAMPLES)
    calls = [task[PREFIX + name] for task in tasks_of(examples) if PREFIX + name in task]
    return calls


@pytest.mark.parametrize("name", MODULES)
def test_every_example_of_a_module_passes_its_argument_spec(name):
    spec = module_of(name).argument_spec()
    calls = example_calls(name)
    assert calls, f"{name}: no example calls the module by its FQCN"
    for index, call in enumerate(calls):
        assert isinstance(call, dict), f"{name} example {index}: its arguments are not a mapping: {call!r}"
        arguments = {key: stand_in(value, spec.get(key, {})) for key, value in call.items()}
        result = ArgumentSpecValidator(spec).validate(arguments)
        assert not result.error_messages, f"{name} example {index}: {result.error_messages}"


def test_the_validation_catches_an_example_that_pastes_a_description_as_options():
    spec = module_of("temporaries_cleanup").argument_spec()
    pasted = {"cloud": "site-a", "older_than": "Only resources older than this many seconds", "description": "x"}
    assert ArgumentSpecValidator(spec).validate(pasted).error_messages
