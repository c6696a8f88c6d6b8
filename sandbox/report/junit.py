"""junit.xml: one testcase per check (trend, orphans, escapes, files, operations, workload,
processes, cleanup)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sandbox.analysis import AnalysisResult
from sandbox.analysis.verdict import CHECKS


def render_junit(r: AnalysisResult) -> str:
    """JUnit XML: critical and warning findings are failures, an incomplete run an error;
    notes go to system-out."""
    suite = ET.Element("testsuite", name="sandbox", tests=str(len(CHECKS)))
    failures = errors = skipped = 0
    for check in CHECKS:
        case = ET.SubElement(suite, "testcase", classname="sandbox", name=check)
        found = [f for f in r.findings if f.check == check]
        if incomplete := [f for f in found if f.level == "incomplete"]:
            errors += 1
            ET.SubElement(case, "error", type="incomplete",
                          message="; ".join(f.message for f in incomplete))
        bad = [f for f in found if f.level in ("critical", "warning")]
        if bad:
            failures += 1
            fail = ET.SubElement(case, "failure", type=bad[0].level,
                                 message="; ".join(f.message for f in bad))
            fail.text = "\n".join(f"{f.level}: {f.message}" for f in bad)
        if check == "trend" and r.verdict.outcome == "inconclusive" and not bad:
            skipped += 1
            ET.SubElement(case, "skipped", message="; ".join(
                f.message for f in found if f.level == "note") or "inconclusive")
        notes = [f.message for f in found if f.level == "note"]
        if notes:
            ET.SubElement(case, "system-out").text = "\n".join(notes)
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
