#!/usr/bin/python
# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_report
short_description: Judge a DR drill against its RPO and RTO targets and write JSON, JUnit XML and Prometheus evidence
version_added: 0.1.0
description:
  - Takes the per-volume results of a DR drill (the backup, the restore, the read-back of the restored
    volume) and judges five steps per volume, C(backup), C(restore), C(byte_proof), C(rpo) and C(rto),
    against the RPO and RTO targets (a default and per volume).
  - Writes a JSON report, a JUnit XML file (one C(testsuite) per volume, one C(testcase) per step) and a
    Prometheus textfile-collector file (metrics prefixed C(openstack_dr_bank_drill_)), each atomically
    (a temporary file in the same directory, then a rename), to the paths given. The formats are
    documented in the collection's C(docs/runbook.md).
  - Does not fail when the drill failed; RV(passed) and RV(failures) say so, so the evidence is written
    either way. The C(openstack_dr.bank.dr_drill) role fails after writing it.
  - Needs neither OpenStack nor a bank.
author:
  - openstack_dr.bank contributors (@openstack-dr)
extends_documentation_fragment:
  - openstack_dr.bank._attributes
attributes:
  check_mode:
    support: full
    details: Builds the report and reports which files would change; writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: Every run records its own finishing time, so the files change on each run.
options:
  errors:
    description:
      - Failures of the drill that belong to no one volume's step (a volume selection that found nothing, a bank
        that could not be listed); each fails the drill.
    type: list
    elements: str
    default: []
  drill_name:
    description:
      - Name of the drill, the C(drill) label of every metric and the prefix of the JUnit class names.
        Give two drills writing metrics for the same volumes different names.
    type: str
    default: dr_drill
  json_path:
    description: Where to write the JSON report; none when not given. The three paths must differ.
    type: path
  junit_path:
    description: Where to write the JUnit XML file; none when not given.
    type: path
  metrics_path:
    description:
      - Where to write the Prometheus text-format file, for example in the node exporter's
        C(--collector.textfile.directory) with a C(.prom) suffix. None when not given.
      - The last success time of a volume whose drill failed this time is kept from the file written before.
    type: path
  mode:
    description: V(full) (the drill backed the volumes up) or V(sample) (it restored backups already in the bank).
    type: str
    default: full
    choices: [full, sample]
  restore_finished_at:
    description:
      - When the restores were ready, UTC C(YYYY-MM-DDTHH:MM:SSZ) (another form is refused); the RPO is the age of the volume's newest
        backup at that time. Now, when not given.
    type: str
  rpo_target:
    description:
      - Default RPO target in seconds, from V(0) to V(315360000) (ten years); V(0) for none.
    type: int
    default: 0
  rto_target:
    description:
      - Default RTO target in seconds, from V(0) to V(315360000) (ten years); V(0) for none.
    type: int
    default: 0
  run_id:
    description: The drill's run id, 1 to 255 characters without control characters.
    type: str
    required: true
  started_at:
    description: When the drill started, UTC C(YYYY-MM-DDTHH:MM:SSZ).
    type: str
  volume_targets:
    description:
      - Per-volume targets, by source volume name or id, each a dict with C(rpo) and/or C(rto) in seconds
        (bounded as O(rpo_target)); they override O(rpo_target) and O(rto_target).
    type: dict
    default: {}
  volumes:
    description:
      - One entry per volume drilled, a dict with C(volume) (the source volume, C(id) and C(name)), C(backup) (the backup
        restored, as M(openstack_dr.bank.volume_glance_backup) or M(openstack_dr.bank.bank_backup_info) return it;
        its C(hashes) are the proof's reference), C(backup_failed), C(backup_msg), C(backup_seconds),
        C(backup_made) (false when the backup was found in the bank rather than made), C(restore) (an entry of the
        C(volume_restore) role's results), C(readback) (an entry of the C(volume_backup) role's results for the
        read-back of the restored volume) and C(newest_backup_created_at).
    type: list
    elements: dict
    required: true
seealso:
  - module: openstack_dr.bank.volume_glance_restore
"""

EXAMPLES = r"""
- name: Write the drill's evidence
  openstack_dr.bank.drill_report:
    run_id: "{{ drill_run_id }}"
    volumes: "{{ drill_volumes }}"
    rto_target: 1800
    rpo_target: 90000
    volume_targets:
      database-data: {rto: 600}
    json_path: /var/lib/dr/drill.json
    junit_path: /var/lib/dr/drill.xml
    metrics_path: /var/lib/node_exporter/textfile/openstack_dr_bank_drill.prom
  register: evidence
"""

RETURN = r"""
passed:
  description: Whether every step of every volume passed.
  returned: always
  type: bool
failures:
  description:
    - "One line per failed or unreached step, C(<volume>: <step>: <why>), naming the figure and the target."
  returned: always
  type: list
  elements: str
  sample: ["database-data: rto: RTO 48.2 s exceeds the target of 30 s"]
report:
  description: The JSON report (format C(openstack_dr.bank/drill-report) version 1), as written to O(json_path).
  returned: always
  type: dict
files:
  description: The paths of the C(json), C(junit) and C(metrics) files (null when not asked for).
  returned: always
  type: dict
"""

from ansible_collections.openstack_dr.bank.plugins.module_utils._drill_report import run_drill_report
from ansible_collections.openstack_dr.bank.plugins.module_utils._runner import run_module


def argument_spec() -> dict:
    return dict(
        drill_name=dict(type="str", default="dr_drill"),
        errors=dict(type="list", elements="str", default=[]),
        json_path=dict(type="path"),
        junit_path=dict(type="path"),
        metrics_path=dict(type="path"),
        mode=dict(type="str", default="full", choices=["full", "sample"]),
        restore_finished_at=dict(type="str"),
        rpo_target=dict(type="int", default=0),
        rto_target=dict(type="int", default=0),
        run_id=dict(type="str", required=True),
        started_at=dict(type="str"),
        volume_targets=dict(type="dict", default={}),
        volumes=dict(type="list", elements="dict", required=True),
    )


def main() -> None:
    run_module(argument_spec(), run_drill_report)


if __name__ == "__main__":
    main()
