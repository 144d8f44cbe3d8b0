"""Import registered models, versions and aliases from an MLflow tracking/registry store.

mlflow is optional (``pip install 'aiwarden[mlflow]'``). Each MLflow version keeps its
number as the aiwarden version label, so running the import again changes nothing (the
same bytes under the same label are accepted as they are). Artifacts go through the
same safety rules as any upload: skops and ONNX import as they are; pickled scikit-learn
models need ``trust`` (and an admin key); flavors aiwarden cannot load are skipped with
their reason.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiwarden import _yaml as bounded_yaml
from aiwarden.registry._errors import ArtifactFormatError, RegistryError
from aiwarden.registry.formats import detect_format
from aiwarden.registry.records import _ALIAS

__all__ = ["ImportReport", "import_mlflow", "pick_artifact"]


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)  # "name/version"
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    aliases: list[str] = field(default_factory=list)  # "name@alias -> version"

    def to_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "unchanged": self.unchanged,
                "skipped": [{"what": w, "reason": r} for w, r in self.skipped],
                "aliases": self.aliases}


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise RegistryError("aiwarden registry import-mlflow needs mlflow: pip install "
                            "'aiwarden[mlflow]' (mlflow-skinny is enough).", "mlflow") from None
    return mlflow


def pick_artifact(local: Path) -> tuple[Path, str]:
    """(file, format) of a downloaded MLflow model: a single file, or an MLmodel folder."""
    if local.is_file():
        return local, detect_format(local.name).name
    spec = local / "MLmodel"
    if spec.exists():
        flavors = (bounded_yaml.safe_load(spec.read_text()) or {}).get("flavors", {})
        if "onnx" in flavors:
            return local / flavors["onnx"].get("data", "model.onnx"), "onnx"
        if "sklearn" in flavors:
            sk = flavors["sklearn"]
            kind = sk.get("serialization_format", "cloudpickle")
            return local / sk["pickled_model"], "skops" if kind == "skops" else "pickle"
        raise ArtifactFormatError(f"no flavor aiwarden can load (flavors: {sorted(flavors)}); "
                                  "log it as skops, ONNX or a pickled scikit-learn model",
                                  "format")
    files = [p for p in local.rglob("*") if p.is_file()]
    if len(files) == 1:
        return files[0], detect_format(files[0].name).name
    raise ArtifactFormatError(f"{local.name}: neither an MLflow model (MLmodel) nor a single "
                              "model file", "format")


def _metadata(mc: Any, mv: Any) -> dict[str, Any]:
    tags = {**dict(mv.tags or {}), "mlflow.version": str(mv.version),
            "mlflow.source": str(mv.source)}
    meta: dict[str, Any] = {"tags": tags, "description": mv.description or None}
    if mv.run_id:
        try:
            run = mc.get_run(mv.run_id)
        except Exception:  # the run was deleted: keep what the version itself says
            return meta
        tags["mlflow.run_id"] = mv.run_id
        meta["metrics"] = dict(run.data.metrics)
        meta["params"] = dict(run.data.params)
        meta["source_commit"] = run.data.tags.get("mlflow.source.git.commit")
    return meta


def import_mlflow(client: Any, *, tracking_uri: str | None = None,
                  registry_uri: str | None = None, models: Sequence[str] | None = None,
                  trust: bool = False, say: Callable[[str], Any] = lambda _: None
                  ) -> ImportReport:
    """Copy MLflow's registered models into aiwarden through ``client`` (the SDK Client)."""
    mlflow = _mlflow()
    from mlflow import MlflowClient

    from aiwarden.sdk.client import ApiError

    mc = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    report = ImportReport()
    where = registry_uri or tracking_uri or mlflow.get_tracking_uri()
    for rm in _pages(mc.search_registered_models):
        if models and rm.name not in models:
            continue
        mapped: set[str] = set()
        quoted = rm.name.replace("'", "\\'")
        for mv in sorted(_pages(mc.search_model_versions, f"name='{quoted}'"),
                         key=lambda v: int(v.version)):
            what = f"{rm.name}/{mv.version}"
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    uri = mc.get_model_version_download_uri(rm.name, mv.version)
                    local = Path(mlflow.artifacts.download_artifacts(
                        artifact_uri=uri, dst_path=tmp, tracking_uri=tracking_uri))
                    path, fmt = pick_artifact(local)
                except (ArtifactFormatError, OSError) as exc:
                    report.skipped.append((what, str(exc)))
                    say(f"skip {what}: {exc}")
                    continue
                if fmt == "pickle" and not trust:
                    report.skipped.append((what, "a pickled model runs code when loaded: "
                                           "import it with --trust (admin key)"))
                    say(f"skip {what}: pickled; needs --trust")
                    continue
                data = path.read_bytes()
                try:
                    state = _register(client, rm.name, str(mv.version), data, fmt, path.name,
                                      _metadata(mc, mv))
                except ApiError as exc:
                    report.skipped.append((what, str(exc)))
                    say(f"skip {what}: {exc}")
                    continue
            mapped.add(str(mv.version))
            (report.imported if state == "imported" else report.unchanged).append(what)
            say(f"{what}: {fmt} {state}")
        for alias, version in sorted((rm.aliases or {}).items()):
            version = str(version)
            if not _ALIAS.fullmatch(alias) or version not in mapped:
                why = "not an aiwarden alias name" if version in mapped else \
                    f"version {version} was not imported"
                report.skipped.append((f"{rm.name}@{alias}", why))
                continue
            client.set_alias(rm.name, alias, version, f"imported from MLflow ({where})",
                             kind="import")
            report.aliases.append(f"{rm.name}@{alias} -> {version}")
            say(f"{rm.name}@{alias} -> {version}")
    return report


def _pages(search: Callable[..., Any], *args: Any) -> Iterator[Any]:
    """Every result of an MLflow search, page after page."""
    token = None
    while True:
        page = search(*args, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _register(client: Any, name: str, version: str, data: bytes, fmt: str, filename: str,
              meta: dict[str, Any]) -> str:
    """"imported", or "unchanged" when the same bytes are there under that label already."""
    from aiwarden.sdk.client import ApiError

    try:
        existing = client.registered_version(name, version)
    except ApiError as exc:
        if exc.status != 404:
            raise
        existing = None
    if existing is not None:
        if existing["sha256"] == hashlib.sha256(data).hexdigest():
            return "unchanged"
        raise ApiError(409, "conflict", f"aiwarden's {name} version {version} holds other "
                       "bytes than MLflow's; not overwritten.", "version")
    client.register_version(name, data, format=fmt, filename=filename, version=version,
                            metadata=meta, trust=fmt == "pickle")
    return "imported"
