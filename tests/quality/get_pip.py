# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test fetches get-pip.py from a host that is not PyPI before it creates any
virtual environment. tests/quality.sh places this file where ansible-test caches that
script (~/.ansible/test/cache/get_pip_<version>.py). Like the real one, it runs
``pip install`` with the arguments it is given, plus setuptools and wheel unless told
--no-setuptools/--no-wheel, but it runs the pip wheel bundled with CPython instead of
an embedded one; everything it installs comes from the configured package index.
"""

from __future__ import annotations

import glob
import os
import sys


def bundled_pip_wheel() -> str:
    """Return the path of the pip wheel that ensurepip ships with this interpreter."""
    import ensurepip  # pylint: disable=import-outside-toplevel

    wheels = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), '_bundled', 'pip-*.whl')))
    if not wheels:
        sys.exit('get-pip stand-in: no bundled pip wheel in ensurepip for %s' % sys.executable)
    return wheels[-1]


def main() -> None:
    """Install pip (and setuptools/wheel unless excluded) with the given arguments."""
    args = sys.argv[1:]
    extra_packages = []
    for package in ('setuptools', 'wheel'):
        flag = '--no-' + package
        if flag in args:
            args.remove(flag)
        else:
            extra_packages.append(package)

    sys.path.insert(0, bundled_pip_wheel())
    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel

    sys.exit(pip_main(['install', '--upgrade', '--force-reinstall'] + args + extra_packages))


if __name__ == '__main__':
    main()
