# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection: openstack.cloud's options, the cloud dict rules, timeouts, secrets."""

from __future__ import annotations

import pytest

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError, OpenStackError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack import connection


def test_argument_spec_matches_openstack_cloud_options():
    spec = connection.openstack_argument_spec()
    assert set(spec) == {
        "cloud", "auth", "auth_type", "region_name", "validate_certs", "ca_cert", "client_cert", "client_key",
        "interface", "api_timeout", "timeout", "sdk_log_path", "sdk_log_level",
    }
    assert spec["auth"]["no_log"] and spec["client_key"]["no_log"]
    assert spec["timeout"]["default"] >= 3600


def test_cloud_dict_with_separate_auth_is_refused():
    with pytest.raises(InvalidInputError, match="auth"):
        connection.connect({"cloud": {"auth": {}}, "auth": {"username": "x"}, "interface": "public"})


def test_data_step_timeout_grows_with_size():
    assert connection.data_step_timeout(3600, 1) == 3600
    assert connection.data_step_timeout(3600, 1024) == 1024 * 60


@pytest.mark.parametrize("timeout", [0, -5, None])
def test_a_timeout_that_is_not_positive_is_refused_by_name(timeout):
    with pytest.raises(InvalidInputError, match="timeout must be a positive number"):
        connection.data_step_timeout(timeout, 1)


def test_unknown_named_cloud_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    (tmp_path / "clouds.yaml").write_text("clouds: {}\n")
    with pytest.raises(OpenStackError, match="no-such-cloud"):
        connection.connect({"cloud": "no-such-cloud", "interface": "public"})


def test_doc_fragment_documents_the_argument_spec_exactly():
    import yaml  # pylint: disable=import-outside-toplevel
    from ansible_collections.openstack_dr.bank.plugins.doc_fragments._openstack import ModuleDocFragment  # pylint: disable=import-outside-toplevel

    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = connection.openstack_argument_spec()
    assert set(documented) == set(spec)
    for name, option in spec.items():
        doc = documented[name]
        assert option.get("type", "str") == doc.get("type", "str"), name
        assert option.get("default") == doc.get("default"), name
        assert sorted(option.get("aliases", [])) == sorted(doc.get("aliases", [])), name
        assert sorted(option.get("choices", [])) == sorted(doc.get("choices", [])), name


def test_secrets_of_a_cloud_dict_are_found_for_masking():
    params = {"cloud": {"auth": {"username": "dr", "password": "s3cret", "application_credential_secret": "acs"},
                        "region_name": "RegionA"}}
    assert connection.openstack_secrets(params) == {"s3cret", "acs"}
    assert connection.openstack_secrets({"cloud": "site-a"}) == set()
