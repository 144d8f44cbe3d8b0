"""Versions: auto-numbering, metadata, the link to monitoring versions, artifact stores."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aiwarden.errors import ParameterError
from aiwarden.registry import ArtifactFormatError, ArtifactIntegrityError, Registry
from aiwarden.store import models_repo as repo
from aiwarden.store.database import Database
from tests.registry.models import FEATURES, fitted, skops_bytes

META = {"metrics": {"auc": 0.91}, "params": {"C": 1.0, "penalty": "l2"},
        "tags": {"team": "risk", "n": 3}, "source_commit": "abc123",
        "training_profile": {"rows": 400}, "description": "baseline"}


def test_two_versions_are_numbered_and_keep_their_metadata(registry: Registry) -> None:
    data = skops_bytes(fitted(C=1.0))
    v1 = registry.register("churn", data, format="skops", metadata=META, actor="alice")
    v2 = registry.register("churn", skops_bytes(fitted(C=0.1)), filename="m.skops",
                           actor="bob")
    assert (v1.version, v2.version) == ("1", "2")
    assert v1.metadata["metrics"] == {"auc": 0.91}
    assert v1.metadata["tags"] == {"team": "risk", "n": "3"}
    assert v1.metadata["params"] == {"C": 1.0, "penalty": "l2"}
    assert v1.metadata["source_commit"] == "abc123"
    assert v1.metadata["training_profile"] == {"rows": 400}
    assert v1.metadata["inputs"] == FEATURES  # read from the estimator
    assert (v1.registered_by, v2.registered_by) == ("alice", "bob")
    assert v1.sha256 == hashlib.sha256(data).hexdigest()
    assert v1.size == len(data)
    assert [v.version for v in registry.versions("churn")] == ["1", "2"]
    assert registry.get("churn").version == "2"  # latest
    assert registry.get("churn", "1").metadata["description"] == "baseline"


def test_registry_versions_are_monitoring_versions(registry: Registry,
                                                   database: Database) -> None:
    """A monitoring-only version keeps its label; the registry numbers around it and can
    attach an artifact to it, so both sides share one version id."""
    with database.write() as conn:
        model = repo.create_model(conn, "fraud", "binary")
        repo.create_version(conn, model, "v1")
        repo.create_version(conn, model, "7")
    v = registry.register("fraud", skops_bytes(fitted()), format="skops")
    assert v.version == "8"
    attached = registry.register("fraud", skops_bytes(fitted(C=2.0)), format="skops",
                                 version="v1")
    with database.read() as conn:
        mon = repo.get_version(conn, repo.get_model(conn, "fraud"), "v1")
    assert attached.version_id == mon.id
    assert [x.version for x in registry.versions("fraud")] == ["v1", "8"]


def test_artifacts_are_immutable_but_a_retry_is_harmless(registry: Registry) -> None:
    data = skops_bytes(fitted(seed=3))
    first = registry.register("immut", data, format="skops", version="a")
    again = registry.register("immut", data, format="skops", version="a")
    assert (again.version, again.sha256, again.created_at) == ("a", first.sha256,
                                                               first.created_at)
    with pytest.raises(repo.Conflict, match="artifacts are immutable"):
        registry.register("immut", skops_bytes(fitted(seed=4)), format="skops", version="a")


def test_bad_input_names_the_field(registry: Registry) -> None:
    data = skops_bytes(fitted())
    with pytest.raises(ParameterError) as err:
        registry.register("m", data, format="skops", metadata={"metrics": {"auc": "high"}})
    assert err.value.field == "metadata.metrics.auc"
    with pytest.raises(ParameterError, match="unknown field") as err:
        registry.register("m", data, format="skops", metadata={"stage": "prod"})
    assert err.value.field == "metadata.stage"
    with pytest.raises(ArtifactFormatError, match="choose from") as err:
        registry.register("m", data, format="tensorflow")
    assert err.value.field == "format"
    with pytest.raises(ArtifactFormatError, match="Cannot tell the format"):
        registry.register("m", data, filename="model.bin")
    with pytest.raises(ArtifactFormatError, match="Not a skops file"):
        registry.register("m", b"not a zip", format="skops")
    with pytest.raises(ParameterError) as err:
        registry.register("../etc", data, format="skops")
    assert err.value.field == "name"


def test_a_changed_artifact_is_refused_at_load(registry: Registry, artifacts: Path) -> None:
    """Issue 5, test 3: bytes changed after upload are refused, naming version and hashes."""
    v = registry.register("tampered", skops_bytes(fitted()), format="skops")
    assert registry.load("tampered", "1").predict(
        {"x1": [0.1], "x2": [0.2], "x3": [0.3]}).shape == (1,)
    path = artifacts / v.uri
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    changed = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(ArtifactIntegrityError) as err:
        registry.load("tampered", "1")
    message = str(err.value)
    assert "tampered version 1" in message
    assert v.sha256 in message and changed in message
    assert (err.value.expected, err.value.actual) == (v.sha256, changed)
    with pytest.raises(ArtifactIntegrityError):
        registry.artifact("tampered", "1")  # downloads are verified too


def test_an_fsspec_store_works(database: Database) -> None:
    pytest.importorskip("fsspec")
    import fsspec

    reg = Registry(database, "memory://aiwarden-test/models")
    v = reg.register("in-memory", skops_bytes(fitted()), format="skops")
    fs = fsspec.filesystem("memory")
    stored = fs.cat_file(f"/aiwarden-test/models/{v.uri}")
    assert hashlib.sha256(stored).hexdigest() == v.sha256
    assert reg.load("in-memory").predict({"x1": [3.0], "x2": [0.0], "x3": [0.0]})[0] == 1
    fs.pipe_file(f"/aiwarden-test/models/{v.uri}", stored + b"!")
    with pytest.raises(ArtifactIntegrityError, match="in-memory version 1"):
        reg.load("in-memory")


def test_concurrent_registrations_get_distinct_numbers(registry: Registry) -> None:
    """Four writers register at once (the model is new): numbers 1-4, each once."""
    import threading

    blobs = [skops_bytes(fitted(seed=s)) for s in range(4)]
    got: list[str] = []
    start = threading.Barrier(4)

    def one(data: bytes) -> None:
        start.wait()
        got.append(registry.register("raced", data, format="skops").version)

    threads = [threading.Thread(target=one, args=(b,)) for b in blobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == ["1", "2", "3", "4"]
    assert sorted(v.sha256 for v in registry.versions("raced")) == sorted(
        hashlib.sha256(b).hexdigest() for b in blobs)
