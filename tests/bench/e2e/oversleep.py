# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How late our waits notice a Cinder step: our phase against the time Cinder logged for the same request.

    .venv/bin/python tests/bench/e2e/oversleep.py .cache/bench-e2e/results-<id>.json

For each of our backups, `upload_to_image` is set against Cinder's API accepting the upload action
and cinder-volume logging "Copy volume to image completed successfully" for the same request id;
for each restore, `volume_from_image` against the volume create request and "Created volume
successfully". The difference is what the polls oversleep (plus one API round trip).
"""

from __future__ import annotations

import datetime
import json
import pathlib
import re
import statistics
import sys

LOGS = pathlib.Path(__file__).resolve().parents[3] / ".devcloud" / "logs"
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \d+ INFO \S+ \[\S+ (req-[0-9a-f-]+) [^\]]*\] (.*)$")
STEPS = {  # operation: (site, phase, what the API log says at the start, what cinder-volume says at the end)
    "backup": ("site-a", "upload_to_image", re.compile(r"^POST \S+/volumes/[0-9a-f-]+/action$"), "Copy volume to image completed successfully."),
    "rebackup": ("site-a", "upload_to_image", re.compile(r"^POST \S+/volumes/[0-9a-f-]+/action$"), "Copy volume to image completed successfully."),
    "restore": ("site-b", "volume_from_image", re.compile(r"^POST \S+/v3/[0-9a-f]+/volumes$"), "Created volume successfully."),
}


def _events(path: pathlib.Path, wanted: re.Pattern | str) -> dict[str, datetime.datetime]:
    found = {}
    for line in path.read_text(errors="replace").splitlines():
        match = LINE.match(line)
        if match and (wanted.match(match.group(3)) if isinstance(wanted, re.Pattern) else match.group(3) == wanted):
            found.setdefault(match.group(2), datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f"))
    return found


def cinder_seconds(operation: str, started: datetime.datetime, wall: float) -> float | None:
    """Cinder's own duration of the one step of this kind that began inside the row's window."""
    site, _phase, start_line, end_line = STEPS[operation]
    begun = _events(LOGS / f"{site}-cinder-api.log", start_line)
    ended = _events(LOGS / f"{site}-cinder-volume.log", end_line)
    inside = [(when, request) for request, when in begun.items()
              if request in ended and started <= when <= started + datetime.timedelta(seconds=wall)]
    if len(inside) != 1:
        return None
    when, request = inside[0]
    return (ended[request] - when).total_seconds()


def main(results: str) -> None:
    rows = json.loads(pathlib.Path(results).read_text())["rows"]
    late = []
    print("| volume | contender | operation | run | our phase s | Cinder logged s | ours later by s |")
    print("|---|---|---|---:|---:|---:|---:|")
    for row in rows:
        if not row.get("ok") or not str(row.get("contender", "")).startswith("ours") or row.get("operation") not in STEPS:
            continue
        phase = STEPS[row["operation"]][1]
        ours = (row.get("phases") or {}).get(phase)
        # The logs are in local time, which is UTC here; started_at is ISO 8601 with its offset.
        started = datetime.datetime.fromisoformat(row["started_at"]).replace(tzinfo=None)
        theirs = cinder_seconds(row["operation"], started, row["wall_s"])
        if ours is None or theirs is None:
            continue
        late.append(ours - theirs)
        print(f"| {row['volume']} | {row['contender']} | {row['operation']} | {row['run']} | {ours:.2f} | {theirs:.2f} | {ours - theirs:.2f} |")
    if late:
        print(f"\n{len(late)} steps: ours later by median {statistics.median(late):.2f} s, at most {max(late):.2f} s")


if __name__ == "__main__":
    main(sys.argv[1])
