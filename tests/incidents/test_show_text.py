"""``aiwarden incidents show`` as text: the timeline reads as the postmortem does, and only
the latest root-cause analysis is printed in full (outside review: fired alerts showed no
rule, and every RCA was inlined where it happened)."""

from __future__ import annotations

from typing import Any

import pytest

from aiwarden.commands.incidents import _show_text


def _incident() -> dict[str, Any]:
    def rca(at: float, body: str) -> dict[str, Any]:
        return {"at": at, "actor": "aiwarden", "kind": "action",
                "detail": {"text": "Root-cause analysis", "markdown": body, "suspects": []}}

    return {"id": 7, "title": "fraud: drift", "model": "fraud", "status": "triggered",
            "severity": "critical", "assignee": None, "runbooks": ["https://wiki/fraud"],
            "timeline": [
                {"at": 1.7e9, "actor": "aiwarden", "kind": "opened",
                 "detail": {"title": "fraud: drift"}},
                {"at": 1.7e9 + 1, "actor": "aiwarden", "kind": "alert_fired",
                 "detail": {"rule": "amount-drift", "column": "amount", "severity": "critical",
                            "value": 0.4321}},
                rca(1.7e9 + 2, "# first analysis\n| a | b |"),
                {"at": 1.7e9 + 3, "actor": "alice", "kind": "comment",
                 "detail": {"text": "looking"}},
                rca(1.7e9 + 4, "# second analysis\n| c | d |"),
            ]}


def test_fired_alerts_name_their_rule_and_only_the_latest_rca_is_printed(
        capsys: pytest.CaptureFixture[str]) -> None:
    _show_text(_incident())
    out = capsys.readouterr().out
    assert "alert fired: amount-drift [amount] (critical, value 0.4321)" in out
    assert "comment: looking" in out and "runbook: https://wiki/fraud" in out
    assert out.count("action: Root-cause analysis") == 2  # both on the timeline
    assert "# second analysis" in out and "# first analysis" not in out
    assert "(the latest of 2; `-o json` has every one)" in out
    assert out.index("comment: looking") < out.index("# second analysis")  # after the timeline
