"""The image audit as a retraining gate (pure function; the run through a server is in
tests/training/test_gates_server.py): the problem image named by path, the limits per kind,
a missing ``images`` extra or a missing folder refused in one line."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from aiwarden.training.gates import image_audit_gate
from aiwarden.training.spec import ImageAuditSpec, PipelineSpec
from tests.training.images import fruit_set, truncate

DEFAULTS = ImageAuditSpec().model_dump()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fruit_set(tmp_path_factory.mktemp("fruit"))


def test_a_clean_drawn_set_passes(clean: Path) -> None:
    out = image_audit_gate(str(clean), DEFAULTS)
    assert out.passed, out.reason
    assert out.evidence["images"] == 16 and out.evidence["classes"] == {"banana": 8,
                                                                         "cucumber": 8}
    assert out.evidence["counts"]["corrupt"] == 0 and out.evidence["findings"] == []


def test_one_truncated_jpeg_blocks_and_is_named(clean: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(clean, tmp_path / "set"))
    truncate(root / "cucumber" / "cucumber_05.jpg")
    out = image_audit_gate(str(root), DEFAULTS)
    assert not out.passed
    assert out.reason == ("blocked: 1 corrupt image(s) (limit 0), first "
                          "cucumber/cucumber_05.jpg: truncated")
    (finding,) = out.evidence["findings"]  # the decoder's own sentence, not the code's
    assert (finding["path"], finding["reason"]) == ("cucumber/cucumber_05.jpg", "truncated")
    assert finding["message"].startswith(
        "The pixels cannot be decoded: image file is truncated"), finding
    # a pipeline that accepts one corrupt image (it skips unreadable files itself) passes
    assert image_audit_gate(str(root), DEFAULTS | {"max_corrupt": 1}).passed
    assert image_audit_gate(str(root), DEFAULTS | {"max_corrupt": None}).passed


def test_duplicates_and_constant_frames_count_against_their_own_limits(
        clean: Path, tmp_path: Path) -> None:
    from PIL import Image

    root = Path(shutil.copytree(clean, tmp_path / "set"))
    shutil.copy(root / "banana" / "banana_01.jpg", root / "banana" / "banana_copy.jpg")
    Image.new("RGB", (96, 96), (0, 0, 0)).save(root / "cucumber" / "black.jpg")
    out = image_audit_gate(str(root), DEFAULTS)
    assert not out.passed
    assert "1 constant image(s) (limit 0), first cucumber/black.jpg: constant" in out.reason
    assert "1 duplicate image(s) (limit 0), first banana/banana_copy.jpg: exact_duplicate" \
        in out.reason
    dup = next(f for f in out.evidence["findings"] if f["reason"] == "exact_duplicate")
    assert dup["related"] == "banana/banana_01.jpg"
    loose = image_audit_gate(str(root), DEFAULTS | {"max_duplicate": 1})
    assert not loose.passed and "duplicate" not in loose.reason and "constant" in loose.reason


def test_a_manifest_is_audited_like_a_folder(clean: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(clean, tmp_path / "set"))
    truncate(root / "banana" / "banana_02.jpg")
    rows = ["path,label"] + [f"{p.relative_to(root)},{p.parent.name}"
                             for p in sorted(root.rglob("*.jpg"))]
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    out = image_audit_gate(str(root / "train.csv"), DEFAULTS)
    assert not out.passed and "banana/banana_02.jpg: truncated" in out.reason


def test_no_such_folder_and_a_missing_extra_are_one_line_refusals(
        clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = image_audit_gate(str(tmp_path / "nowhere"), DEFAULTS)
    assert not out.passed and "cannot be audited" in out.reason and "nowhere" in out.reason
    # Pillow not importable, as in an install without the images extra
    for name in [m for m in sys.modules if m == "PIL" or m.startswith("PIL.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "PIL", None)
    out = image_audit_gate(str(clean), DEFAULTS)
    assert not out.passed and "\n" not in out.reason
    assert "aiwarden[images]" in out.reason and "Pillow" in out.reason


def test_the_limits_are_checked_by_the_pipeline_spec() -> None:
    base = {"model": "m", "entry": "a.b:c", "data": {"images": "/data/fruit"}}
    spec = PipelineSpec.model_validate(base)
    assert spec.gates.image_audit.max_corrupt == 0
    assert spec.gates.image_audit.max_label_issues is None
    off = PipelineSpec.model_validate(base | {"gates": {"image_audit": None}})
    assert off.gates.image_audit is None
    for bad in ({"max_corrupt": -1}, {"max_corupt": 0}):
        with pytest.raises(ValueError, match="max_cor"):
            PipelineSpec.model_validate(base | {"gates": {"image_audit": bad}})
