"""junit.xml: one test suite per run, named by its scenario (``sandbox.quick``, or
``sandbox.<command>``), with its duration, start time and settings as properties; one testcase
per check that applies to the run (analysis.checks.applicable_checks: no ``operations`` case for
a command, no ``js_heap`` case unless the JS heap was measured)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from sandbox.analysis import AnalysisResult
from sandbox.analysis.checks import applicable_checks
from sandbox.report.common import minutes_needed
from sandbox.untrusted import shown


def render_junit(r: AnalysisResult) -> str:
    """JUnit XML: critical and warning findings are failures, an incomplete run an error, an
    inconclusive memory verdict a skipped trend; notes go to system-out. Every name and
    message is shown escaped (no control character, undecodable byte: XML 1.0-safe)."""
    config, checks = r.run.config, applicable_checks(r)
    name = f"sandbox.{shown(r.label)}"
    root = ET.Element("testsuites", name="sandbox")
    suite = ET.SubElement(root, "testsuite", name=name, tests=str(len(checks)),
                          time=f"{r.duration_s:.3f}")
    if (started := r.run.started) is not None:
        suite.set("timestamp", datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    props = ET.SubElement(suite, "properties")
    for key, value in (("run_dir", r.run_dir), ("budget", r.verdict.budget),
                       ("status", r.status), ("exit_code", r.exit_code),
                       ("duration_s", config.duration_s),
                       ("operations_per_minute", config.operations_per_minute),
                       ("backend", r.backend_line)):
        if value is not None:
            ET.SubElement(props, "property", name=key, value=shown(value))
    failures = errors = skipped = 0
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname=name, name=check, time="0")
        found = [f for f in r.findings if f.check == check]
        if incomplete := [f for f in found if f.level == "incomplete"]:
            errors += 1
            ET.SubElement(case, "error", type="incomplete",
                          message="; ".join(shown(f.message) for f in incomplete))
        bad = [f for f in found if f.level in ("critical", "warning")]
        if bad:
            failures += 1
            fail = ET.SubElement(case, "failure", type=bad[0].level,
                                 message="; ".join(shown(f.message) for f in bad))
            fail.text = "\n".join(f"{f.level}: {shown(f.message)}" for f in bad)
        if check == "trend" and r.verdict.outcome == "inconclusive" and not bad:
            skipped += 1
            ET.SubElement(case, "skipped", message="; ".join(
                [shown(f.message) for f in found if f.level == "note"]
                or ["inconclusive"]) + f"; for a verdict: {minutes_needed(r.verdict)}")
        notes = [shown(f.message) for f in found if f.level == "note"]
        if notes:
            ET.SubElement(case, "system-out").text = "\n".join(notes)
    for element in (suite, root):
        element.set("failures", str(failures))
        element.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    root.set("tests", str(len(checks)))
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
