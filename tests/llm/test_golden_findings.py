"""The ingest evaluators give exactly the findings they gave before the speed work.

``tests/data/llm_eval/golden_findings.jsonl.gz`` holds ~7,000 events (the labelled sets and
generated 1 kB answers with PII, secrets, injections, context, truncation) and every finding
the evaluators gave them, written by ``make_golden_findings.py`` from the implementation before
it was optimised (since then, 65 guessed ``truncated`` findings of events whose provider said
``finish_reason: stop`` or ``content_filter`` were removed: the provider's word settles it).
Any difference (a finding more or less, another span, severity or detail)
fails here, named by request id.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from aiwarden.llm.events import parse_events
from aiwarden.monitoring.llm_ingest import evaluate

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "llm_eval" / "golden_findings.jsonl.gz"


@pytest.fixture(scope="module")
def golden() -> tuple[list[dict], list[list[list]]]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as fh:
        head, *lines = fh.read().splitlines()
    recs = [json.loads(x) for x in lines]
    assert len(recs) == json.loads(head)["events"] > 5000
    return [r["row"] for r in recs], [r["findings"] for r in recs]


def _findings(rows: list[dict]) -> list[list[list]]:
    good, bad = parse_events(rows)
    assert not bad
    found, _, why, _ = evaluate([e for _, e in good], workers=0)
    assert not why
    return [[[f.evaluator, f.category, f.field, f.start, f.end, f.severity, f.detail]
             for f in fs] for fs in found]


def _diff(rows: list[dict], got: list[list[list]], want: list[list[list]]) -> list[str]:
    return [f"{r['request_id']}: got {g}, expected {w}"
            for r, g, w in zip(rows, got, want, strict=True) if g != w]


def test_one_batch_gives_the_golden_findings(golden) -> None:
    rows, want = golden
    assert sum(map(len, want)) > 10_000  # the file holds findings of every kind
    assert {f[0] for fs in want for f in fs} >= {"safety", "pii", "secrets", "injection",
                                                  "refusal", "output", "groundedness"}
    diff = _diff(rows, _findings(rows), want)
    assert not diff, f"{len(diff)} events differ, e.g.\n" + "\n".join(diff[:10])


def test_small_batches_give_the_golden_findings(golden) -> None:
    """Batch-level work (shared screens, one matrix product per batch) must not depend on
    what else is in the batch: events alone and in batches of 7 get the same findings."""
    rows, want = golden
    picked = list(range(0, len(rows), 23))
    got = [_findings([rows[i]])[0] for i in picked[:150]]
    diff = _diff([rows[i] for i in picked[:150]], got, [want[i] for i in picked[:150]])
    rest = picked[150:]
    for k in range(0, len(rest), 7):
        part = rest[k:k + 7]
        diff += _diff([rows[i] for i in part], _findings([rows[i] for i in part]),
                      [want[i] for i in part])
    assert not diff, f"{len(diff)} events differ, e.g.\n" + "\n".join(diff[:10])
