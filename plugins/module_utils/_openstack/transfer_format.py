# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which image format carries a volume through Glance: raw, or a sparse format that skips zeros."""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError
from ansible_collections.openstack_dr.bank.plugins.module_utils._openstack._sdk import api_errors

RAW = "raw"
AUTO = "auto"


@dataclasses.dataclass(frozen=True)
class TransferFormat:
    """The image disk_format used, why, and whether `auto` chose it (then a refusal may fall back to raw)."""

    disk_format: str
    reason: str
    automatic: bool = False

    def as_dict(self) -> dict[str, t.Any]:
        return {"format": self.disk_format, "reason": self.reason}


def glance_disk_formats(conn: t.Any) -> list[str]:
    """The disk formats this Glance accepts (its image schema's enum); empty when it does not say."""
    try:
        schema = conn.image.get("/schemas/image").json()
    except (ValueError, *api_errors()):
        return []
    formats = ((schema.get("properties") or {}).get("disk_format") or {}).get("enum") or []
    return [str(name) for name in formats if name]


def choose_transfer_format(requested: str, preference: t.Sequence[str], accepted: t.Sequence[str]) -> TransferFormat:
    """`requested` when Glance accepts it; for `auto`, the first of `preference` Glance accepts, else raw.

    `accepted` empty means Glance did not publish its formats: then only raw is assumed.
    """
    if requested == RAW:
        return TransferFormat(RAW, "raw as requested")
    if requested != AUTO:
        if requested not in preference:
            raise InvalidInputError(f"transfer_format must be one of auto, raw, {', '.join(preference)}; got {requested!r}")
        if requested not in accepted:
            raise InvalidInputError(
                f"transfer_format {requested} is not accepted by this Glance (its disk formats: {', '.join(accepted) or 'not published'})")
        return TransferFormat(requested, f"{requested} as requested")
    for candidate in preference:
        if candidate in accepted:
            return TransferFormat(candidate, f"auto: {candidate}, the fastest sparse format this Glance accepts", automatic=True)
    return TransferFormat(RAW, "auto: raw, since this Glance accepts none of " + ", ".join(preference), automatic=True)


def fallback_to_raw(chosen: TransferFormat, refusal: BaseException) -> TransferFormat:
    return TransferFormat(RAW, f"auto: raw, since the cloud refused {chosen.disk_format} ({refusal})", automatic=True)
