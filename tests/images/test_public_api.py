"""The public surface of aiwarden.images is pinned, and importing it does no work."""

from __future__ import annotations

import subprocess
import sys

import aiwarden.images as images

PUBLIC = {
    "FAILURES", "FORMATS", "INSTALL_HINT", "NUMERIC", "REASONS", "AuditReport",
    "DecodeFailure", "Decoded", "DomainClassifierResult", "Finding", "ImageRef", "MMDResult",
    "MissingExtraError", "PropertyTable", "QualityReport", "audit_images",
    "compute_properties", "decode", "decode_base64", "decode_many", "domain_classifier_auc",
    "duplicates", "hamming", "leakage", "load_source", "mmd_test", "properties", "quality",
}


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert set(images.__all__) == PUBLIC
    for name in images.__all__:
        assert getattr(images, name) is not None


def test_import_loads_neither_pillow_cleanlab_sklearn_nor_the_server() -> None:
    code = ("import sys, aiwarden.images; print(sorted({m.split('.')[0] for m in sys.modules} "
            "& {'PIL', 'cleanlab', 'sklearn', 'fastapi', 'sqlalchemy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_every_reason_code_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "images.md").read_text()
    for code in images.REASONS:
        assert f"`{code}`" in doc, code
