# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seconds spent in each named phase of a run, for the `stats` of a result."""

from __future__ import annotations

import contextlib
import time
import typing as t


class PhaseTimer:
    """``with phases("upload_to_image"): ...`` records the phase's seconds, also when it fails."""

    def __init__(self, clock: t.Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> t.Iterator[None]:
        started = self.clock()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + self.clock() - started, 3)

    def total(self) -> float:
        return round(sum(self.seconds.values()), 3)
