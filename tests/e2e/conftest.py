"""pytest configuration for the end-to-end tests: shared fixtures of the devcloud and of the bank servers.

pytest puts this folder (it has no __init__.py) on sys.path, so the helpers import by module name.
"""
from __future__ import annotations

from bank_fixtures import fixture_bank_servers, fixture_make_bank_config
from devcloud_fixtures import fixture_devcloud_connect, fixture_devcloud_sites, fixture_site_a, fixture_site_b

__all__ = ["fixture_bank_servers", "fixture_devcloud_connect", "fixture_devcloud_sites", "fixture_make_bank_config", "fixture_site_a",
           "fixture_site_b"]
