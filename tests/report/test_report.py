"""The offline report: the right columns drift, broken records are found, every input format
reads back exactly, the HTML is one escaped self-contained file, and bad inputs exit 2."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from aiwarden.demo.synthetic import transactions
from aiwarden.report import load_table, render_html
from aiwarden.report.command import register

N = 4000
EVIL = "<script>alert(1)</script>"
EVIL_VALUE = "<img src=x onerror=alert(2)>"


def _labelled(n: int, seed: int) -> pd.DataFrame:
    """Generated transactions with a calibrated fraud score, its label and a prediction."""
    rng = np.random.default_rng(seed)
    df = transactions(n, rng)
    score = rng.beta(1.0, 6.0, n)
    df["score"] = score
    df["is_fraud"] = (rng.random(n) < score).astype(int)
    df["prediction"] = (score >= 0.5).astype(int)
    return df


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _labelled(N, 0), _labelled(N, 1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiwarden")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(*argv: Any) -> int:
    args = _parser().parse_args(["report", *map(str, argv)])
    return int(args.func(args))


def _report(tmp: Path, ref: Path, cur: Path, *opts: str) -> tuple[dict[str, Any], str]:
    out = tmp / "out"
    assert _run(ref, cur, "--out", out, *opts) == 0
    return (json.loads((out / "report.json").read_text(encoding="utf-8")),
            (out / "report.html").read_text(encoding="utf-8"))


def _level(report: dict[str, Any], column: str) -> str:
    return next(c["level"] for c in report["drift"]["columns"] if c["column"] == column)


def _parquet(df: pd.DataFrame, path: Path) -> Path:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    return path


# ------------------------------------------------------------------------------ content
def test_planted_shift_flags_exactly_that_column(tmp_path: Path, frames) -> None:
    ref, cur = frames
    cur = cur.assign(account_age_days=cur["account_age_days"] + 300.0)  # ~0.7 std
    report, page = _report(tmp_path, _parquet(ref, tmp_path / "ref.parquet"),
                           _parquet(cur, tmp_path / "cur.parquet"), "--target", "is_fraud",
                           "--prediction", "prediction", "--scores", "score")
    assert report["verdict"]["drifted_features"] == ["account_age_days"]
    assert report["verdict"]["drifted_columns"] == ["account_age_days"]
    assert _level(report, "account_age_days") in ("warning", "critical")
    assert _level(report, "amount") == "none"
    assert report["datasets"]["current"] == {"name": str(tmp_path / "cur.parquet"), "rows": N,
                                             "columns": 8}
    # The drifted row is marked in the page too, and only that one.
    marked = re.findall(r'<tr data-drifted="true"><td><code>([^<]*)</code>', page)
    assert marked == ["account_age_days"]
    # Histograms come from the bins: shares sum to one, and the shift shows in them.
    h = report["histograms"]["account_age_days"]
    total = sum(h["current"]) + h["below"]["current"] + h["above"]["current"]
    assert total == pytest.approx(1.0)
    assert h["current"][0] < h["reference"][0]


def test_performance_realised_with_labels_and_estimated_from_scores(tmp_path: Path,
                                                                     frames) -> None:
    ref, cur = frames
    ref_path = _parquet(ref, tmp_path / "ref.parquet")
    hints = ("--target", "is_fraud", "--prediction", "prediction", "--scores", "score")
    labelled, page = _report(tmp_path / "a", ref_path, _parquet(cur, tmp_path / "cur.parquet"),
                             *hints)
    perf = labelled["performance"]
    expected = float(np.mean(cur["is_fraud"] == cur["prediction"]))
    assert perf["realised"]["accuracy"] == pytest.approx(expected)
    est = perf["estimated"]["metrics"]["accuracy"]
    assert est["lower"] <= est["estimate"] <= est["upper"]
    assert "current (estimated)" in page
    unlabelled, _ = _report(tmp_path / "b", ref_path,
                            _parquet(cur.drop(columns=["is_fraud"]), tmp_path / "u.parquet"),
                            *hints)
    assert unlabelled["performance"]["realised"] is None
    assert unlabelled["performance"]["estimated"] is not None
    assert unlabelled["quality"]["findings"] == []  # labels come later: not a finding


def test_corrupted_records_are_quality_findings(tmp_path: Path, frames, capsys) -> None:
    ref, _ = frames
    big = _labelled(60_000, 2)  # the bad text lies beyond the CSV reader's first block
    bad = big.astype({"amount": object})
    bad.loc[17, "amount"] = 1e308
    bad.loc[55_000, "amount"] = "12,50"
    cur = tmp_path / "cur.csv"
    bad.to_csv(cur, index=False)
    report, page = _report(tmp_path, _parquet(ref, tmp_path / "ref.parquet"), cur)
    found = {(f["column"], f["check"]): f for f in report["quality"]["findings"]}
    assert found[("amount", "far_out_of_range")]["examples"] == [17]
    assert found[("amount", "far_out_of_range")]["severity"] == "error"
    assert found[("amount", "invalid_type")]["examples"] == [55_000]
    assert report["verdict"]["status"] == "critical"
    assert "far_out_of_range" in page and "invalid_type" in page
    assert "<td>55000</td>" in page
    printed = capsys.readouterr().out
    assert "invalid_type" in printed and str(tmp_path / "out" / "report.html") in printed


def test_html_is_one_file_without_external_resources(tmp_path: Path, frames) -> None:
    ref, cur = frames
    _report(tmp_path, _parquet(ref, tmp_path / "ref.parquet"),
            _parquet(cur, tmp_path / "cur.parquet"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html",
                                                                   "report.json"]
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<svg" in page and "<style>" in page
    for needle in ("http://", "https://", "src=", "href=", "@import", "url(", "//cdn"):
        assert needle not in page, needle


def test_html_size_does_not_grow_with_rows(tmp_path: Path) -> None:
    ref_path = _parquet(_labelled(2000, 0), tmp_path / "ref.parquet")
    sizes = []
    for n in (2000, 40_000):
        _, page = _report(tmp_path / str(n), ref_path,
                          _parquet(_labelled(n, 1), tmp_path / f"cur{n}.parquet"))
        sizes.append(len(page))
    assert abs(sizes[1] - sizes[0]) < 0.05 * sizes[0]


def test_user_strings_are_escaped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({EVIL: rng.normal(size=N),
                        "kind": rng.choice(["a", "b", EVIL_VALUE], N)})
    cur = pd.DataFrame({EVIL: rng.normal(size=N) + 2.0, "kind": rng.choice(["a", EVIL], N)})
    report, page = _report(tmp_path, _parquet(ref, tmp_path / "ref.parquet"),
                           _parquet(cur, tmp_path / "cur.parquet"))
    assert report["verdict"]["drifted_features"][0] == EVIL  # JSON keeps the raw name
    assert ("kind", "unseen_category") in {(f["column"], f["check"])
                                           for f in report["quality"]["findings"]}
    assert EVIL not in page and EVIL_VALUE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert page.count("<script>") == 1  # the page's own small filter script


def test_render_html_escapes_every_report_string() -> None:
    report = {"verdict": {"status": EVIL, "reasons": [EVIL]},
              "datasets": {"reference": {"name": EVIL, "rows": 1, "columns": 1}},
              "quality": {"findings": [{"check": EVIL, "severity": EVIL, "column": EVIL,
                                        "count": 1, "rate": 1.0, "message": EVIL,
                                        "examples": [3], "values": {EVIL: 1}}]},
              "drift": {"columns": [{"column": EVIL, "role": EVIL, "method": EVIL,
                                     "value": 1.0, "threshold": 0.5, "severity": 2.0,
                                     "level": EVIL, "drifted": True}]},
              "histograms": {EVIL: {"kind": "categorical", "labels": [EVIL],
                                    "reference": [1.0], "current": [0.5]}},
              "performance": {"task": "binary", "realised": {EVIL: 0.5}}}
    page = render_html(report)
    assert EVIL not in page
    assert page.count("<script>") == 1


# ------------------------------------------------------------------------------ formats
def _write(table: pa.Table, path: Path) -> None:
    ext = path.suffix
    if ext in (".parquet", ".pq"):
        pq.write_table(table, path)
    elif ext == ".csv":
        pcsv.write_csv(table, path)
    elif ext == ".json":
        path.write_text(json.dumps(table.to_pylist()))
    elif ext in (".jsonl", ".ndjson"):
        path.write_text("".join(json.dumps(r) + "\n" for r in table.to_pylist()))
    elif ext == ".arrow":
        with pa.ipc.new_file(path, table.schema) as w:
            w.write_table(table)
    elif ext == ".ipc":
        with pa.ipc.new_stream(path, table.schema) as w:
            w.write_table(table)
    elif ext == ".feather":
        feather.write_feather(table, path)


@pytest.mark.parametrize("ext", [".parquet", ".pq", ".csv", ".json", ".jsonl", ".ndjson",
                                 ".arrow", ".feather", ".ipc"])
def test_each_format_round_trips(tmp_path: Path, frames, ext: str) -> None:
    ref, cur = frames
    table = pa.Table.from_pandas(cur.head(500), preserve_index=False)
    path = tmp_path / f"cur{ext}"
    _write(table, path)
    loaded = load_table(path)
    assert loaded.column_names == table.column_names
    pd.testing.assert_frame_equal(loaded.to_pandas(), table.to_pandas(), check_dtype=False)
    report, _ = _report(tmp_path, _parquet(ref, tmp_path / "ref.parquet"), path)
    assert report["datasets"]["current"]["rows"] == 500
    assert report["quality"]["findings"] == []


def test_csv_conversion_error_falls_back_to_text(tmp_path: Path, monkeypatch) -> None:
    """Older pyarrow fails a column whose type changes after the first block; the value must
    survive as text (to become an invalid_type finding), not fail the whole file."""
    path = tmp_path / "cur.csv"
    path.write_text("x,c\n1.5,a\n12;50,b\n")
    real = pcsv.read_csv

    def failing(*args: Any, **kwargs: Any) -> pa.Table:
        monkeypatch.setattr(pcsv, "read_csv", real)
        raise pa.ArrowInvalid("In CSV column #0: CSV conversion error to double: invalid value")

    monkeypatch.setattr(pcsv, "read_csv", failing)
    loaded = load_table(path)
    assert loaded.column("x").to_pylist() == ["1.5", "12;50"]


def test_json_with_mixed_types_keeps_the_bad_value(tmp_path: Path) -> None:
    rows = [{"x": float(i), "c": "a"} for i in range(50)]
    rows[7]["x"] = "oops"
    path = tmp_path / "cur.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = load_table(path)
    assert loaded.column("x").to_pylist()[7] == "oops"


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name,content,reason", [
    ("data.txt", "a,b\n1,2\n", "unknown extension"),
    ("missing.parquet", None, "no such file"),
    ("garbage.parquet", "not parquet at all", "as parquet"),
    ("garbage.arrow", "not arrow", "as arrow"),
    ("broken.json", '[{"a": 1}, {"a": ', "as json"),
    ("header_only.csv", "a,b\n", "no rows"),
])
def test_bad_file_exits_2_naming_it(tmp_path: Path, frames, capsys, name: str,
                                    content: str | None, reason: str) -> None:
    ref_path = _parquet(frames[0], tmp_path / "ref.parquet")
    bad = tmp_path / name
    if content is not None:
        bad.write_text(content)
    assert _run(ref_path, bad, "--out", tmp_path / "out") == 2
    captured = capsys.readouterr()
    assert str(bad) in captured.err and reason in captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "out").exists()


def test_unknown_column_hint_exits_2(tmp_path: Path, frames, capsys) -> None:
    ref_path = _parquet(frames[0], tmp_path / "ref.parquet")
    assert _run(ref_path, ref_path, "--out", tmp_path / "out", "--target", "nope") == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and str(ref_path) in err


def test_register_parses_options() -> None:
    args = _parser().parse_args(["report", "r.csv", "c.csv", "--scores", "p_a, p_b",
                                 "--segments", "country", "--task", "multiclass"])
    assert args.scores == ["p_a", "p_b"] and args.segments == ["country"]
    assert args.task == "multiclass" and args.out == Path("aiwarden-report")
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["report", "r.csv", "c.csv", "--task", "ranking"])
    assert exc.value.code == 2
