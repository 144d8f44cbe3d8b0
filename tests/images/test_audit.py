"""The training-set audit, as a function and as ``aiwarden audit images`` run by a pipeline."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aiwarden.errors import DataError
from aiwarden.images import FAILURES, audit_images, load_source
from aiwarden.images.synthetic import KINDS, fruit_jpeg, write_planted_set


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("planted")
    return root, write_planted_set(root, per_class=40, seed=1)


@pytest.fixture(scope="module")
def report(planted: tuple[Path, dict]):
    return audit_images(planted[0])


def _named(report, reasons) -> set[str]:
    return {f.name for f in report.findings if f.reason in reasons}


def test_every_planted_problem_is_named_and_dark_images_are_not(report, planted) -> None:
    truth = planted[1]
    assert _named(report, FAILURES) == truth["corrupt"]
    assert _named(report, {"constant"}) == truth["constant"]
    pairs = {frozenset((f.name, f.related_name)) for f in report.findings
             if f.reason in ("exact_duplicate", "near_duplicate")}
    assert pairs == truth["duplicate"]
    assert _named(report, {"leakage"}) == truth["leakage"]
    found = _named(report, {"label_issue"})
    assert len(found & truth["mislabelled"]) >= 7 and len(found - truth["mislabelled"]) <= 2
    assert not {f.name for f in report.findings} & truth["dark"]
    files = [p for p in planted[0].rglob("*") if p.is_file()]
    assert report.images == len(files) and sum(report.classes.values()) == len(files)
    assert report.label_check.startswith("confident learning (cleanlab) on quick model")


def _garbled_jpeg() -> bytes:
    """Three bytes overwritten: decodes without error into a block-shifted image."""
    data = bytearray(fruit_jpeg("banana", np.random.default_rng(103)))
    rng = np.random.default_rng(3)
    for pos in rng.integers(len(data) // 4, len(data) - 10, 3):
        data[pos] = int(rng.integers(0, 256))
    return bytes(data)


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
def test_the_one_corrupted_image_in_a_clean_set_is_named(tmp_path: Path, damage: str) -> None:
    rng = np.random.default_rng(5)
    for kind in KINDS:
        (tmp_path / kind).mkdir()
        for n in range(20):
            (tmp_path / kind / f"{n}.jpg").write_bytes(fruit_jpeg(kind, rng))
    data = (tmp_path / "banana" / "7.jpg").read_bytes()
    (tmp_path / "banana" / "7.jpg").write_bytes(
        data[: len(data) * 2 // 3] if damage == "truncated" else _garbled_jpeg())
    rep = audit_images(tmp_path)
    assert [(f.name, f.reason) for f in rep.findings] == [("banana/7.jpg", damage)]


def test_manifest_with_given_probabilities_arrays_and_missing_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    rows, proba = [], []
    for n in range(12):
        kind = KINDS[n % 2]
        (tmp_path / f"img{n}.jpg").write_bytes(fruit_jpeg(kind, rng))
        label = KINDS[1 - n % 2] if n == 5 else kind  # image 5 is filed under the other fruit
        rows.append({"path": f"img{n}.jpg", "label": label})
        p = 0.95 if kind == "banana" else 0.05
        proba.append([p, 1 - p])
    nan = np.full((16, 16, 3), 0.5, np.float32)
    nan[2:9, 3:7] = 0.9
    nan[0, 0, 0] = np.nan
    np.save(tmp_path / "arr.npy", nan)
    rows += [{"path": "arr.npy", "label": "banana"}, {"path": "gone.jpg", "label": "banana"}]
    proba += [[0.9, 0.1], [0.5, 0.5]]
    (tmp_path / "m.json").write_text(json.dumps({"images": rows}))
    rep = audit_images(tmp_path / "m.json", probabilities=np.array(proba), outliers=False)
    assert {(f.name, f.reason) for f in rep.findings} == {
        ("img5.jpg", "label_issue"), ("arr.npy", "non_finite"), ("gone.jpg", "missing_file")}
    assert rep.label_check == "confident learning (cleanlab) on given out-of-fold probabilities"
    with pytest.raises(DataError, match="probabilities must have shape"):
        audit_images(tmp_path / "m.json", probabilities=np.ones((3, 2)))


def test_folder_layouts_and_manifest_errors(tmp_path: Path) -> None:
    (tmp_path / "train" / "banana").mkdir(parents=True)
    (tmp_path / "train" / "banana" / "a.jpg").write_bytes(b"x")
    (tmp_path / "loose.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an image")
    refs = load_source(tmp_path)
    assert [(r.path, r.label, r.split) for r in refs] == [
        ("loose.png", None, None), ("train/banana/a.jpg", "banana", "train")]
    (tmp_path / "m.csv").write_text("label\nbanana\n")
    with pytest.raises(DataError, match="row 1 has no path"):
        load_source(tmp_path / "m.csv")
    with pytest.raises(DataError, match=r"must be \.csv, \.json or \.jsonl"):
        load_source(tmp_path / "notes.txt")


def _cli(*args: str, pre: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{pre}import sys; from aiwarden.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, "audit", "images", *args],
                          capture_output=True, text=True, timeout=180)


def test_cli_exit_codes_json_and_a_missing_extra(planted, tmp_path: Path) -> None:
    root, truth = planted
    res = _cli(str(root), "-o", "json", "--no-labels")
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    assert doc["counts"]["constant"] == 4 and doc["label_check"] == "not run: turned off"
    assert {f["name"] for f in doc["findings"] if f["reason"] == "truncated"} == {
        n for n in truth["corrupt"] if "trunc" in n}
    clean = tmp_path / "clean"
    clean.mkdir()
    rng = np.random.default_rng(9)
    with (clean / "m.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        for n in range(4):
            (clean / f"{n}.jpg").write_bytes(fruit_jpeg(KINDS[n % 2], rng))
            w.writerow([f"{n}.jpg", KINDS[n % 2]])
    (clean / "oof.csv").write_text("banana,cucumber\n" + "".join(
        "0.9,0.1\n" if n % 2 == 0 else "0.2,0.8\n" for n in range(4)))
    res = _cli(str(clean / "m.csv"), "--probabilities", str(clean / "oof.csv"),
               "--no-outliers")
    assert res.returncode == 0 and "no findings" in res.stdout, res.stderr
    assert "on given out-of-fold probabilities" in res.stdout
    res = _cli(str(tmp_path / "absent"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "absent: no such file or folder" in res.stderr
    res = _cli(str(clean / "m.csv"), pre="import sys; sys.modules['PIL'] = None; ")
    assert res.returncode == 2
    assert res.stderr.strip() == ("aiwarden audit images: error: Image checks need Pillow, "
                                  "which is not installed: pip install 'aiwarden[images]'")


def test_a_class_with_one_image_is_left_out_of_the_quick_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    for kind, n in (("banana", 12), ("cucumber", 12), ("apple", 1)):
        (tmp_path / kind).mkdir()
        for i in range(n):
            (tmp_path / kind / f"{i}.jpg").write_bytes(
                fruit_jpeg("banana" if kind == "apple" else kind, rng))
    rep = audit_images(tmp_path)
    assert rep.label_check.endswith("left out, one readable image only: apple")
    assert rep.classes == {"apple": 1, "banana": 12, "cucumber": 12}
    assert not [f for f in rep.findings if f.reason == "label_issue"]
