"""``aiwarden registry`` and ``aiwarden promote`` against a real server (SQLite), and
``import-mlflow`` from a real MLflow store when mlflow is installed."""

from __future__ import annotations

import pickle
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiwarden.cli import main
from aiwarden.sdk import Client
from tests.registry.models import fitted, onnx_bytes, skops_bytes
from tests.server.live import ThreadServer, settings_for


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("registry-cli")
    with ThreadServer(settings_for(f"sqlite:///{tmp / 'r.db'}", tmp,
                                   allow_code_artifacts=True)) as s:  # the pickle import
        yield s


def run(srv: ThreadServer, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str,
                                                                                      str]:
    code = main([*argv, "--url", srv.url])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_register_promote_history_download(srv: ThreadServer, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for seed in (0, 1):
        (tmp_path / f"m{seed}.skops").write_bytes(skops_bytes(fitted(seed=seed)))
    code, out, err = run(srv, capsys, "registry", "register", "cli-model",
                         str(tmp_path / "m0.skops"), "--metric", "auc=0.81", "--tag",
                         "team=risk", "--param", "C=1.0", "--source-commit", "abc123")
    assert code == 0, err
    assert out.startswith("registered cli-model version 1 (skops, sha256 ")
    assert run(srv, capsys, "registry", "register", "cli-model",
               str(tmp_path / "m1.skops"))[1].startswith("registered cli-model version 2 ")
    code, out, _ = run(srv, capsys, "promote", "cli-model", "1", "--reason", "first")
    assert (code, out.strip()) == (0, "cli-model@champion: (unset) -> 1")
    code, out, _ = run(srv, capsys, "promote", "cli-model", "2", "--reason", "better AUC")
    assert out.strip() == "cli-model@champion: 1 -> 2"
    code, out, _ = run(srv, capsys, "registry", "previous", "cli-model", "champion")
    assert (code, out.strip()) == (0, "1")
    code, out, _ = run(srv, capsys, "registry", "history", "cli-model", "champion")
    lines = out.strip().splitlines()
    assert len(lines) == 3 and "better AUC" in lines[1] and "promote" in lines[1]
    assert "1 -> 2" in lines[1] and "- -> 1" in lines[2]
    code, out, _ = run(srv, capsys, "registry", "show", "cli-model", "@champion")
    assert '"version": "2"' in out
    code, out, _ = run(srv, capsys, "registry", "show", "cli-model", "1")
    assert '"auc": 0.81' in out and '"source_commit": "abc123"' in out
    code, out, _ = run(srv, capsys, "registry", "show", "cli-model")  # the latest
    assert code == 0 and '"version": "2"' in out and '"auc": 0.81' not in out
    code, out, _ = run(srv, capsys, "registry", "list", "cli-model")
    assert [ln.split()[0] for ln in out.strip().splitlines()[1:]] == ["1", "2"]
    assert out.strip().splitlines()[2].endswith("champion")
    code, out, _ = run(srv, capsys, "registry", "list")
    assert "champion=2" in out
    dest = tmp_path / "back.skops"
    code, out, _ = run(srv, capsys, "registry", "download", "cli-model", "2", "--out",
                       str(dest))
    assert code == 0 and dest.read_bytes() == (tmp_path / "m1.skops").read_bytes()
    code, out, _ = run(srv, capsys, "registry", "alias", "cli-model", "champion", "1",
                       "--reason", "rollback", "--expect", "2")
    assert out.strip() == "cli-model@champion: 2 -> 1"


def test_failures_are_one_line(srv: ThreadServer, capsys: pytest.CaptureFixture[str],
                               tmp_path: Path) -> None:
    code, _, err = run(srv, capsys, "promote", "cli-model", "99", "--reason", "typo")
    assert code == 3 and err.count("\n") == 1  # not found
    assert err.startswith("aiwarden promote: error: HTTP 404")
    code, _, err = run(srv, capsys, "registry", "register", "x", str(tmp_path / "nope.skops"))
    assert code == 2 and err.startswith("aiwarden registry register: error: ")
    code, _, err = run(srv, capsys, "registry", "register", "x", "--metric", "auc=high",
                       "--entry-point", "a:b")
    assert code == 2 and "expected a number" in err


def test_import_mlflow_without_mlflow_says_what_to_install(
        srv: ThreadServer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    code, _, err = run(srv, capsys, "registry", "import-mlflow")
    assert code == 2 and err.count("\n") == 1
    assert "needs mlflow" in err and "aiwarden[mlflow]" in err


def _mlflow_store(tmp: Path) -> str:
    """Three versions of 'imported' (skops MLmodel, ONNX file, pickle) and an alias."""
    pytest.importorskip("mlflow")
    import mlflow
    import mlflow.sklearn

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mc = mlflow.MlflowClient(tracking_uri=uri)
    exp = mc.create_experiment("e", artifact_location=(tmp / "mlartifacts").as_uri())
    mc.create_registered_model("imported")
    model = fitted(seed=5)
    for kind in ("skops", "onnx", "pickle"):
        run = mc.create_run(exp, tags={"mlflow.source.git.commit": f"commit-{kind}"})
        mc.log_param(run.info.run_id, "kind", kind)
        mc.log_metric(run.info.run_id, "auc", 0.8)
        folder = tmp / kind
        if kind == "skops":
            with warnings.catch_warnings():  # MLflow's own chatter while it saves
                warnings.simplefilter("ignore")
                mlflow.sklearn.save_model(model, folder, serialization_format="skops")
        else:
            folder.mkdir()
            data = onnx_bytes(model) if kind == "onnx" else pickle.dumps(model)
            (folder / ("model.onnx" if kind == "onnx" else "model.pkl")).write_bytes(data)
        mc.log_artifacts(run.info.run_id, str(folder), "model")
        mc.set_terminated(run.info.run_id)
        mc.create_model_version("imported", f"{run.info.artifact_uri}/model",
                                run_id=run.info.run_id, tags={"k": kind})
    mc.set_registered_model_alias("imported", "champion", "2")
    return uri


# MLflow's own SQLAlchemy store uses APIs that SQLAlchemy 2.1 deprecates: not ours to fix
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")
def test_import_mlflow(srv: ThreadServer, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    uri = _mlflow_store(tmp_path)
    code, out, err = run(srv, capsys, "registry", "import-mlflow", "--tracking-uri", uri)
    assert code == 0, err
    assert out.strip().splitlines()[-1] == ("imported 2 version(s), 0 unchanged, 1 skipped, "
                                            "1 alias(es) set")
    assert "imported/3: pickled; needs --trust" in out
    with Client(srv.url) as c:
        versions = {v["version"]: v for v in c.registered_versions("imported")}
        assert sorted(versions) == ["1", "2"]
        assert (versions["1"]["format"], versions["2"]["format"]) == ("skops", "onnx")
        meta = versions["1"]["metadata"]
        assert meta["params"] == {"kind": "skops"} and meta["metrics"] == {"auc": 0.8}
        assert meta["source_commit"] == "commit-skops" and meta["tags"]["k"] == "skops"
        assert c.aliases("imported") == {"champion": "2"}
        assert c.alias_history("imported", "champion")[0]["kind"] == "import"
    code, out, _ = run(srv, capsys, "registry", "import-mlflow", "--tracking-uri", uri,
                       "--trust")
    assert out.strip().splitlines()[-1] == ("imported 1 version(s), 2 unchanged, 0 skipped, "
                                            "1 alias(es) set")
    with Client(srv.url) as c:
        assert c.registered_version("imported", "3")["format"] == "pickle"
        assert len(c.alias_history("imported", "champion")) == 1  # no second move
