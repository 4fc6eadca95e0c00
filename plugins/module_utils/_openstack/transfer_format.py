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
# Cinder's RBD driver makes a volume from a raw image of Glance's RBD store as a copy-on-write clone
# (1.9 s at 4 GiB here); a qcow2 it downloads and converts (74 s). Raw carries the zeros through Glance
# too, so it is worth it only when the data is a large share of the volume: the break-even measured
# here lies between 0.24 (4 GiB, idle machine) and 0.46 (1 GiB, loaded) of the volume (docs/benchmarks.md).
RAW_CLONE_MIN_DATA_SHARE = 1 / 3


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


def glance_default_store_type(conn: t.Any) -> str | None:
    """The type (rbd, file, swift, ...) of the store Glance puts new images in; None when this user cannot see it.

    Glance shows its stores' types to admins only (GET /v2/info/stores/detail), and only when its stores
    are configured with enabled_backends; any other answer means unknown.
    """
    try:
        response = conn.image.get("/info/stores/detail")
        if getattr(response, "status_code", 0) != 200:
            return None
        stores = response.json().get("stores") or []
    except (ValueError, AttributeError, *api_errors()):
        return None
    stores = [store for store in stores if isinstance(store, dict)]
    # The default store takes new images; a Glance with a single store may not flag it.
    default = [store for store in stores if str(store.get("default", "")).lower() == "true"] or (stores if len(stores) == 1 else [])
    if not default:
        return None
    return str(default[0].get("type") or "") or None


def prefer_raw_where_cinder_clones(chosen: TransferFormat, store_type: str | None, data_share: float) -> TransferFormat:
    """For `auto` at a site whose Glance keeps images in Ceph RBD: raw, when the data is a large enough share.

    `store_type` is glance_default_store_type()'s answer; `data_share` the backup's data over its size.
    Anything but `auto`'s sparse choice is returned as it is.
    """
    if not chosen.automatic or chosen.disk_format == RAW:
        return chosen
    share = f"{data_share:.0%} of the volume"
    if store_type is None:
        return dataclasses.replace(chosen, reason=(
            f"{chosen.reason}; where Glance keeps images is not visible to this user (its stores' types are for admins): "
            "at a Ceph RBD site, transfer_format raw lets Cinder clone the image instead of converting it"))
    if store_type != "rbd":
        return dataclasses.replace(chosen, reason=f"{chosen.reason}; Glance keeps images in its {store_type} store, where no clone is made")
    if data_share < RAW_CLONE_MIN_DATA_SHARE:
        return dataclasses.replace(chosen, reason=(
            f"{chosen.reason}; Glance keeps images in Ceph RBD, where Cinder would clone a raw image, but the data is only "
            f"{share}: raw would carry the zeros through Glance too (raw from {RAW_CLONE_MIN_DATA_SHARE:.0%})"))
    return TransferFormat(RAW, (
        f"auto: raw, since Glance keeps images in Ceph RBD, where Cinder makes the volume a copy-on-write clone of a raw image "
        f"instead of converting a {chosen.disk_format}, and the data is {share} (raw from {RAW_CLONE_MIN_DATA_SHARE:.0%}); "
        "the image stays as the volume's parent"), automatic=True)


def fallback_to_raw(chosen: TransferFormat, refusal: BaseException) -> TransferFormat:
    return TransferFormat(RAW, f"auto: raw, since the cloud refused {chosen.disk_format} ({refusal})", automatic=True)
