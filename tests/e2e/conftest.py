"""pytest configuration for the end-to-end tests: the devcloud fixtures are shared from devcloud_fixtures."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# pylint: disable-next=wrong-import-position,unused-import
from devcloud_fixtures import fixture_devcloud_connect, fixture_devcloud_sites  # noqa: E402,F401
# pylint: disable-next=wrong-import-position,unused-import
from bank_fixtures import fixture_bank_servers, fixture_make_bank_config  # noqa: E402,F401
