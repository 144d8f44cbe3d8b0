"""The test ordering that lets the pytest workers finish together (tests/file_order.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tests.file_order import costs_from_junit, longest_first


def _items(*nodeids: str) -> list:
    return [SimpleNamespace(nodeid=n) for n in nodeids]


def test_files_go_longest_first_and_keep_their_own_order() -> None:
    items = _items("a.py::t1", "b.py::t1", "a.py::t2", "c.py::t1", "b.py::t2", "c.py::t2",
                   "c.py::t3")
    # b is the costliest by the table; c (unknown, 3 tests) outweighs a (1.5 s)
    got = [i.nodeid for i in longest_first(items, {"a.py": 1.5, "b.py": 90.0})]
    assert got == ["b.py::t1", "b.py::t2", "c.py::t1", "c.py::t2", "c.py::t3",
                   "a.py::t1", "a.py::t2"]


def test_costs_sum_every_phase_per_file_from_a_junit_report(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="tests.test_file_order" name="x" time="1.25"/>'
        '<testcase classname="tests.test_file_order" name="y" time="2.5"/>'
        '<testcase classname="tests.test_file_order.SomeClass" name="z" time="4"/>'
        '<testcase classname="tests.gone_module" name="w" time="9"/>'
        '</testsuite></testsuites>')
    assert costs_from_junit(report) == {"tests/test_file_order.py": 7.8}
