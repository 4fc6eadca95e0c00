# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""drill_report: judge a DR drill's results against its RPO and RTO targets and write the evidence.

Three files, each written atomically (a temporary file in the same directory, fsync, rename), so a
reader (a Prometheus textfile collector, a CI job picking up JUnit) never sees half a file:

- a JSON report (``openstack_dr.bank/drill-report`` version 1), the whole record;
- a JUnit XML file: one ``testsuite`` per volume, five ``testcase`` elements in it (backup, restore,
  byte_proof, rpo, rto);
- a Prometheus text-format file for the node exporter's textfile collector, metrics prefixed
  ``openstack_dr_bank_drill_``.

The formats are documented in docs/runbook.md. Pure Python: no OpenStack, no bank.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
import typing as t
import xml.etree.ElementTree as ET

from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.documents import parse_utc, utc_timestamp
from ansible_collections.openstack_dr.bank.plugins.module_utils._errors import InvalidInputError, ReportWriteError
from ansible_collections.openstack_dr.bank.plugins.module_utils._inputs import (
    CINDER_MAX_CHARS,
    DRILL_TARGET,
    check_number,
    check_text,
    check_utc_timestamp,
)

REPORT_FORMAT = "openstack_dr.bank/drill-report"
REPORT_VERSION = 1
STEPS = ("backup", "restore", "byte_proof", "rpo", "rto")
# The steps that take time of their own (the seconds of rpo and rto are figures, not durations).
TIMED_STEPS = ("backup", "restore", "byte_proof")
METRIC_PREFIX = "openstack_dr_bank_drill_"

#: name -> help text of every metric written, in the order written.
METRICS = {
    "success": "1 when every step of the volume's drill passed (backup, restore, byte proof, RPO, RTO), else 0.",
    "step_success": "1 when the drill step passed, 0 when it failed or was not reached.",
    "last_run_timestamp_seconds": "When the drill of the volume last finished, seconds since the epoch.",
    "last_success_timestamp_seconds": "When a drill of the volume last passed every step, seconds since the epoch.",
    "rpo_seconds": "Recovery point: age of the volume's newest complete backup when the restore was ready.",
    "rto_seconds": "Recovery time: seconds from the start of the volume's restore to an available volume.",
    "rpo_target_seconds": "The RPO target the drill checked (absent when none).",
    "rto_target_seconds": "The RTO target the drill checked (absent when none).",
    "bytes": "Bytes of the restored volume image, proven equal to the backup's.",
    "stored_bytes": "Bytes the restored backup wrote into the bank when it was made.",
    "volumes": "Volumes in the drill.",
    "failed_volumes": "Volumes of the drill with a failed step.",
}


def _number(value: t.Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _target(volume: t.Mapping[str, t.Any], targets: t.Mapping[str, t.Any], which: str) -> float:
    """The volume's own target (by name, then id), else the default; 0 means none."""
    per_volume = targets.get("volumes") or {}
    for key in (volume.get("name"), volume.get("id")):
        own = per_volume.get(key) if key else None
        if isinstance(own, t.Mapping) and own.get(which) is not None:
            return _number(own[which])
    return _number(targets.get(which))


def _step(passed: bool | None, message: str, **figures: t.Any) -> dict[str, t.Any]:
    """passed None: the step was not reached."""
    return dict({"passed": bool(passed), "reached": passed is not None, "message": message}, **figures)


def _byte_proof(source: t.Mapping[str, t.Any], readback: t.Mapping[str, t.Any]) -> tuple[bool, str]:
    """The restored volume's bytes, hashed as they were read back, against the hashes the manifest records.

    sha256 is always recorded (the chunk engine hashes the raw bytes); sha512 too when the backup crossed
    Glance raw (Glance's os_hash_value): every hash both sides have must agree.
    """
    expected = source.get("hashes") or {}
    found = (readback.get("backup") or {}).get("hashes") or {}
    if not expected.get("sha256"):
        return False, "the backup records no sha256 to prove the bytes against"
    compared = sorted(name for name in expected if found.get(name))
    differing = [name for name in compared if expected[name] != found[name]]
    if differing or "sha256" not in compared:
        name = (differing or ["sha256"])[0]
        return False, (f"restored bytes differ from the backup's: {name} {str(found.get(name))[:16]}... "
                       f"instead of {str(expected.get(name))[:16]}...")
    return True, "restored bytes equal the backup's (" + ", ".join(f"{name} {str(expected[name])[:16]}..." for name in compared) + ")"


def _judge_volume(entry: t.Mapping[str, t.Any], targets: t.Mapping[str, t.Any], restore_finished: float | None) -> dict[str, t.Any]:
    volume = dict(entry.get("volume") or {})
    name = str(volume.get("name") or volume.get("id") or "?")
    source = entry.get("backup") or {}
    backup_failed = bool(entry.get("backup_failed")) or not source.get("id")
    restore = entry.get("restore") or {}
    readback = entry.get("readback") or {}
    steps: dict[str, dict[str, t.Any]] = {}

    steps["backup"] = _step(
        not backup_failed,
        str(entry.get("backup_msg") or "no complete backup") if backup_failed else
        f"{'backup' if entry.get('backup_made', True) else 'complete backup in the bank'} {source.get('name')} ({source.get('id')})",
        seconds=round(_number(entry.get("backup_seconds")), 3), backup=source.get("name"))

    restored_volume = (restore.get("volume") or {}).get("id")
    restore_ok = None if backup_failed or not restore else not restore.get("failed") and bool(restored_volume)
    restore_seconds = _number((restore.get("stats") or {}).get("seconds"))
    steps["restore"] = _step(
        restore_ok,
        "not reached: no backup" if restore_ok is None else
        (f"restored as volume {restored_volume}, every chunk verified" if restore_ok else str(restore.get("msg") or "restore failed")),
        seconds=round(restore_seconds, 3), restored_volume=restored_volume)

    if not restore_ok:
        proof: tuple[bool | None, str] = (None, "not reached: no restored volume")
    elif not readback or readback.get("failed"):
        proof = (False, f"could not read the restored volume back: {readback.get('msg') or 'no read-back'}")
    else:
        proof = _byte_proof(source, readback)
    steps["byte_proof"] = _step(proof[0], proof[1], seconds=round(_number((readback.get("stats") or {}).get("seconds")), 3),
                                hashes=dict(source.get("hashes") or {}),
                                restored_hashes=dict(((readback.get("backup") or {}).get("hashes")) or {}))

    # RPO: the age of the newest complete backup of the volume (what a disaster at that moment would lose).
    newest = parse_utc(entry.get("newest_backup_created_at") or source.get("created_at"))
    rpo = None if newest is None or restore_finished is None or backup_failed else max(0.0, restore_finished - newest)
    for which, figure in (("rpo", rpo), ("rto", restore_seconds if restore_ok else None)):
        target = _target(volume, targets, which)
        label = which.upper()
        if figure is None:
            steps[which] = _step(None, f"not reached: no {label} measured", seconds=None, target=target or None)
        elif target and figure > target:
            steps[which] = _step(False, f"{label} {figure:.1f} s exceeds the target of {target:g} s", seconds=round(figure, 3), target=target)
        else:
            steps[which] = _step(True, f"{label} {figure:.1f} s" + (f" within the target of {target:g} s" if target else " (no target)"),
                                 seconds=round(figure, 3), target=target or None)

    failures = [f"{name}: {step}: {result['message']}" for step, result in steps.items() if not result["passed"]]
    return {
        "volume": {"id": volume.get("id"), "name": volume.get("name")},
        "backup": {key: source.get(key) for key in ("id", "name", "created_at", "completed_at", "size", "stored_bytes")},
        "passed": not failures,
        "steps": steps,
        "rpo_seconds": steps["rpo"]["seconds"],
        "rto_seconds": steps["rto"]["seconds"],
        "bytes": int(_number(source.get("size"))) if steps["byte_proof"]["passed"] else 0,
        "stored_bytes": int(_number(source.get("stored_bytes"))),
        "failures": failures,
    }


def build_report(params: t.Mapping[str, t.Any], now: float | None = None) -> dict[str, t.Any]:
    """The drill's report: each volume judged step by step, RPO and RTO against their targets."""
    now = time.time() if now is None else now
    volumes = params.get("volumes") or []
    for index, entry in enumerate(volumes):
        if not isinstance(entry, t.Mapping) or not isinstance(entry.get("volume"), t.Mapping):
            raise InvalidInputError(f"volumes[{index}] must be a dict with a volume dict (id, name)")
    targets = {"rpo": params.get("rpo_target") or 0, "rto": params.get("rto_target") or 0,
               "volumes": params.get("volume_targets") or {}}
    restore_finished = parse_utc(params.get("restore_finished_at")) if params.get("restore_finished_at") else now
    judged = [_judge_volume(entry, targets, restore_finished) for entry in volumes]
    failures = [str(error) for error in params.get("errors") or []]
    failures += [failure for volume in judged for failure in volume["failures"]]
    if not judged:
        failures.append("no volume was drilled")
    return {
        "format": REPORT_FORMAT,
        "format_version": REPORT_VERSION,
        "run_id": params["run_id"],
        "drill": params.get("drill_name") or "dr_drill",
        "mode": params.get("mode") or "full",
        "started_at": params.get("started_at") or utc_timestamp(now),
        "finished_at": utc_timestamp(now),
        "passed": not failures,
        "targets": targets,
        "volumes": judged,
        "failures": failures,
    }


def render_json(report: t.Mapping[str, t.Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def render_junit(report: t.Mapping[str, t.Any]) -> str:
    """One testsuite per volume (named after it), one testcase per step; not-reached steps are skipped."""
    suites = ET.Element("testsuites", name=f"openstack_dr.bank {report['drill']} {report['run_id']}")
    total = failed = skipped = 0
    for volume in report["volumes"]:
        name = str(volume["volume"].get("name") or volume["volume"].get("id"))
        suite = ET.SubElement(suites, "testsuite", name=name, timestamp=str(report["finished_at"]).rstrip("Z"))
        properties = ET.SubElement(suite, "properties")
        for key, value in (("volume_id", volume["volume"].get("id")), ("backup", volume["backup"].get("name")),
                           ("run_id", report["run_id"]), ("mode", report["mode"])):
            ET.SubElement(properties, "property", name=key, value=str(value or ""))
        counts = {"failures": 0, "skipped": 0}
        seconds = 0.0
        for step in STEPS:
            result = volume["steps"][step]
            case = ET.SubElement(suite, "testcase", name=step, classname=f"{report['drill']}.{name}",
                                 time=f"{_number(result.get('seconds')) if step in TIMED_STEPS else 0.0:.3f}")
            seconds += _number(result.get("seconds")) if step in TIMED_STEPS else 0.0
            if not result["reached"]:
                ET.SubElement(case, "skipped", message=result["message"])
                counts["skipped"] += 1
            elif not result["passed"]:
                ET.SubElement(case, "failure", message=result["message"], type=f"{step}_failed").text = result["message"]
                counts["failures"] += 1
            else:
                ET.SubElement(case, "system-out").text = result["message"]
        suite.set("tests", str(len(STEPS)))
        suite.set("failures", str(counts["failures"]))
        suite.set("errors", "0")
        suite.set("skipped", str(counts["skipped"]))
        suite.set("time", f"{seconds:.3f}")
        total += len(STEPS)
        failed += counts["failures"]
        skipped += counts["skipped"]
    suites.set("tests", str(total))
    suites.set("failures", str(failed))
    suites.set("errors", "0")
    suites.set("skipped", str(skipped))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _label_value(value: t.Any) -> str:
    return str(value if value is not None else "").replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _labels(**labels: t.Any) -> str:
    return "{" + ",".join(f'{key}="{_label_value(value)}"' for key, value in labels.items()) + "}"


_SUCCESS_LINE = re.compile(r"^" + METRIC_PREFIX + r'last_success_timestamp_seconds\{(?P<labels>.*)\} (?P<value>\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def previous_successes(text: str) -> dict[tuple[str, str], float]:
    """(drill, volume_id) -> last success time, from a metrics file this module wrote before."""
    found = {}
    for line in text.splitlines():
        match = _SUCCESS_LINE.match(line)
        if match:
            labels = dict(_LABEL.findall(match.group("labels")))
            found[(labels.get("drill", ""), labels.get("volume_id", ""))] = _number(match.group("value"))
    return found


def render_metrics(report: t.Mapping[str, t.Any], now: float, previous: t.Mapping[tuple[str, str], float] | None = None) -> str:
    """The Prometheus text format (version 0.0.4), HELP and TYPE for each metric; every metric is a gauge."""
    previous = previous or {}
    samples: dict[str, list[tuple[str, float]]] = {name: [] for name in METRICS}
    drill = report["drill"]
    for volume in report["volumes"]:
        volume_labels = {"drill": drill, "volume": volume["volume"].get("name") or "", "volume_id": volume["volume"].get("id") or ""}
        labels = _labels(**volume_labels)
        samples["success"].append((labels, 1.0 if volume["passed"] else 0.0))
        for step in STEPS:
            samples["step_success"].append((_labels(**volume_labels, step=step), 1.0 if volume["steps"][step]["passed"] else 0.0))
        samples["last_run_timestamp_seconds"].append((labels, now))
        last_success = now if volume["passed"] else previous.get((drill, volume_labels["volume_id"]))
        if last_success is not None:
            samples["last_success_timestamp_seconds"].append((labels, last_success))
        for which in ("rpo", "rto"):
            step = volume["steps"][which]
            if step["seconds"] is not None:
                samples[f"{which}_seconds"].append((labels, _number(step["seconds"])))
            if step.get("target"):
                samples[f"{which}_target_seconds"].append((labels, _number(step["target"])))
        samples["bytes"].append((labels, float(volume["bytes"])))
        samples["stored_bytes"].append((labels, float(volume["stored_bytes"])))
    drill_labels = _labels(drill=drill)
    samples["volumes"].append((drill_labels, float(len(report["volumes"]))))
    samples["failed_volumes"].append((drill_labels, float(sum(1 for volume in report["volumes"] if not volume["passed"]))))
    lines = []
    for name, help_text in METRICS.items():
        if not samples[name]:
            continue
        lines.append(f"# HELP {METRIC_PREFIX}{name} {help_text}")
        lines.append(f"# TYPE {METRIC_PREFIX}{name} gauge")
        lines.extend(f"{METRIC_PREFIX}{name}{labels} {value:.17g}" for labels, value in samples[name])
    return "\n".join(lines) + "\n"


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ReportWriteError(f"Failed to read {path}: {exc}", path=path) from exc


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as exc:
        raise ReportWriteError(f"Failed to write {path}: {exc}", path=path) from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes 0600 files; a textfile collector running as another user must read this one.
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        raise ReportWriteError(f"Failed to write {path}: {exc}", path=path) from exc
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def check_inputs(params: t.Mapping[str, t.Any]) -> None:
    """Refuse, by name, what would make the evidence lie: a negative target, a time that is none, one file for two."""
    check_text("run_id", params.get("run_id"), max_chars=CINDER_MAX_CHARS)
    check_text("drill_name", params.get("drill_name"), max_chars=CINDER_MAX_CHARS)
    for option in ("rpo_target", "rto_target"):
        check_number(option, params.get(option), DRILL_TARGET)
    for volume, targets in (params.get("volume_targets") or {}).items():
        if not isinstance(targets, t.Mapping) or not targets or set(targets) - {"rpo", "rto"}:
            raise InvalidInputError(f"volume_targets.{volume} must be a dict of rpo and/or rto (seconds), got {targets!r}",
                                    option="volume_targets")
        for which, value in targets.items():
            check_number(f"volume_targets.{volume}.{which}", value, DRILL_TARGET)
    for option in ("started_at", "restore_finished_at"):
        check_utc_timestamp(option, params.get(option))
    paths: dict[str, str] = {}
    for option in ("json_path", "junit_path", "metrics_path"):
        path = params.get(option)
        if path and os.path.realpath(path) in paths:
            raise InvalidInputError(f"{option} and {paths[os.path.realpath(path)]} must differ, both are {path}", option=option)
        if path:
            paths[os.path.realpath(path)] = option


def run_drill_report(module: t.Any) -> dict[str, t.Any]:
    params = module.params
    check_inputs(params)
    now = time.time()
    report = build_report(params, now)
    outputs: dict[str, str] = {}
    if params.get("json_path"):
        outputs[params["json_path"]] = render_json(report)
    if params.get("junit_path"):
        outputs[params["junit_path"]] = render_junit(report)
    if params.get("metrics_path"):
        previous = read_text(params["metrics_path"])
        outputs[params["metrics_path"]] = render_metrics(report, now, previous_successes(previous or ""))
    changed = [path for path, text in outputs.items() if read_text(path) != text]
    if not module.check_mode:
        for path in changed:
            write_atomically(path, outputs[path])
    return {
        "changed": bool(changed),
        "passed": report["passed"],
        "failures": report["failures"],
        "report": report,
        "files": {"json": params.get("json_path"), "junit": params.get("junit_path"), "metrics": params.get("metrics_path")},
    }
