"""JUnit XML for `fcsoft check --junit FILE`: one <testcase> per case, a <failure> with the
expected and observed results, a <skipped> with the reason (the schema Jenkins, GitLab and
pytest's junitxml share: testsuites > testsuite > testcase)."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from .runner import Summary

__all__ = ["junit_xml", "write_junit"]

SUITE_NAME = "fcsoft check"


def junit_xml(summary: Summary, properties: Mapping[str, str] | None = None) -> ET.Element:
    """The <testsuites> element for `summary`."""
    counts = {"tests": str(len(summary.results)), "failures": str(summary.count("fail")),
              "errors": "0", "skipped": str(summary.count("skip")),
              "time": f"{summary.seconds:.3f}"}
    root = ET.Element("testsuites", {"name": SUITE_NAME, **counts})
    suite = ET.SubElement(root, "testsuite", {
        "name": SUITE_NAME, **counts,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "hostname": socket.gethostname()})
    if properties:
        props = ET.SubElement(suite, "properties")
        for name, value in properties.items():
            ET.SubElement(props, "property", name=name, value=value)
    for r in summary.results:
        tc = ET.SubElement(suite, "testcase", classname=f"fcsoft.check.{r.name.split('.')[0]}",
                           name=r.name, time=f"{r.seconds:.3f}")
        if r.outcome == "fail":
            failure = ET.SubElement(tc, "failure", type="ConformanceFailure",
                                    message=f"{r.step}: expected {r.expected}, "
                                            f"observed {r.observed}")
            failure.text = (f"step: {r.step}\nexpected: {r.expected}\n"
                            f"observed: {r.observed}\n")
        elif r.outcome == "skip":
            ET.SubElement(tc, "skipped", message=r.reason)
    if summary.cleanup_error:
        ET.SubElement(suite, "system-err").text = (
            f"clean-up at the end failed: {summary.cleanup_error}")
    return root


def write_junit(path: str | Path, summary: Summary,
                properties: Mapping[str, str] | None = None) -> None:
    """Write the report to `path` (UTF-8, with an XML declaration)."""
    tree = ET.ElementTree(junit_xml(summary, properties))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
