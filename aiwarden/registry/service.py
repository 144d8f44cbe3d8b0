"""The registry service: register versions, move aliases, load verified artifacts.

Like the monitoring ``Monitor``, it owns no HTTP: the server, the CLI and scripts call the
same methods with plain values. Registry versions *are* monitoring versions (rows of
``model_versions``) with an artifact attached, so both sides share model and version ids.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from aiwarden.errors import ParameterError
from aiwarden.registry import _repo
from aiwarden.registry._errors import ArtifactIntegrityError, UntrustedArtifactError
from aiwarden.registry.artifacts import ArtifactStore, open_store
from aiwarden.registry.formats import WRAPPER_TYPES, detect_format, get_format
from aiwarden.registry.predictor import Predictor
from aiwarden.registry.records import (
    AliasEvent,
    VersionInfo,
    check_alias,
    check_name,
    clean_filename,
    clean_metadata,
)
from aiwarden.store import models_repo as repo
from aiwarden.store.database import Database
from aiwarden.store.tables import model_versions

__all__ = ["UNSET", "Registry"]

log = logging.getLogger(__name__)
UNSET: Any = object()  # ``expected`` not given: move whatever the alias points at
_KINDS = ("set", "promote", "rollback", "import")


class Registry:
    """Versions, aliases and artifacts of models, over a database and an artifact store.

    Parameters
    ----------
    db : Database
    store : ArtifactStore or str
        Where the bytes go: a folder, or an fsspec URL such as ``s3://bucket/models``.
    trusted_types : sequence of str
        skops types that load without an admin's trust (default: the XGBoost/LightGBM
        scikit-learn wrappers plus ``AIWARDEN_SKOPS_TRUSTED``, comma separated).
    on_new_model : callable, optional
        Called with (name, task) after a registration created the model (the server
        installs its default alert rules there).
    """

    def __init__(self, db: Database, store: ArtifactStore | str | os.PathLike[str], *,
                 trusted_types: Sequence[str] | None = None,
                 on_new_model: Callable[[str, str | None], Any] | None = None) -> None:
        self.db = db
        self.store = open_store(store) if isinstance(store, str | os.PathLike) else store
        if trusted_types is None:
            extra = os.environ.get("AIWARDEN_SKOPS_TRUSTED", "")
            trusted_types = [*WRAPPER_TYPES, *(t.strip() for t in extra.split(",") if t.strip())]
        self.trusted_types = frozenset(trusted_types)
        self.on_new_model = on_new_model

    # ------------------------------------------------------------------ register
    def register(self, name: str, data: bytes, *, format: str | None = None,
                 filename: str | None = None, entry_point: str | None = None,
                 metadata: Mapping[str, Any] | None = None, version: str | None = None,
                 task: str | None = None, actor: str = "anonymous", admin: bool = True,
                 trust: bool = False) -> VersionInfo:
        """Store the artifact and attach it to the next version ("1", "2", …) or ``version``.

        Formats that run code at load (pickle, joblib, entry points) and skops types off
        the allow-list need ``admin`` and ``trust``; the admin is recorded as ``trusted_by``.
        Registering the same bytes again under an explicit ``version`` returns it unchanged.
        """
        check_name(name, "name")
        if version is not None:
            check_name(version, "version")
        filename = clean_filename(filename)  # it becomes a download's header: no CR/LF, no path
        fmt = get_format(format) if format else detect_format(filename, entry_point)
        fmt.check(data, entry_point)
        meta = clean_metadata(metadata)
        types = fmt.untrusted_types(data)  # os.system & co: 422 whoever asks
        beyond = self.beyond_allow_list(types)
        trusted_by = self._trust(fmt.name, fmt.runs_code, beyond, actor, admin, trust)
        # a trial load: a broken artifact is refused now, not when the gateway needs it
        trial = fmt.load(data, trusted_types=types, trusted=True, entry_point=entry_point,
                         inputs=meta["inputs"], model=name, version=version or "?")
        meta["inputs"] = meta["inputs"] or trial.inputs
        sha = hashlib.sha256(data).hexdigest()
        ext = fmt.extensions[0] if fmt.extensions else ".bin"
        uri = f"{name}/{sha}{ext}"
        self.store.put(uri, data)  # content-addressed: a retry or a crash leaves no harm
        model = self._model(name, task)
        with self.db.write(model.id) as conn:
            existing = {r.version: r.id for r in conn.execute(
                select(model_versions.c.id, model_versions.c.version)
                .where(model_versions.c.model_id == model.id))}
            if version is None:
                numbers = [int(v) for v in existing if v.isascii() and v.isdigit()]
                version = str(max(numbers, default=0) + 1)
            if version in existing:
                row = _repo.artifact_of(conn, existing[version])
                if row is not None:
                    if row.sha256 == sha and row.format == fmt.name:
                        return _repo.versions(conn, model, version=version)[0]
                    raise repo.Conflict(f"Version {version!r} of {name!r} has an artifact "
                                        "already; artifacts are immutable: register a new "
                                        "version.", "version")
                version_id = existing[version]
            else:
                version_id = repo.create_version(conn, model, version).id
            _repo.insert_artifact(
                conn, version_id=version_id, model_id=model.id, format=fmt.name, uri=uri,
                sha256=sha, size=len(data), filename=filename, entry_point=entry_point,
                trusted_types=types, trusted_by=trusted_by, meta=meta, registered_by=actor)
            return _repo.versions(conn, model, version_id=version_id)[0]

    def beyond_allow_list(self, types: Sequence[str]) -> list[str]:
        """The skops types (off skops' defaults) that are not on this registry's allow-list
        either, so registering them needs an admin's ``trust``."""
        return sorted(set(types) - self.trusted_types)

    @staticmethod
    def _trust(fmt: str, runs_code: bool, beyond: list[str], actor: str, admin: bool,
               trust: bool) -> str | None:
        """Who vouches for code that runs at load; None when nothing needs vouching."""
        if not runs_code and not beyond:
            return None
        why = (f"a {fmt} artifact runs arbitrary code when it is loaded" if runs_code else
               f"the skops artifact holds types that are not trusted by default: {beyond}")
        if not admin:
            raise UntrustedArtifactError(f"Only a key with the admin scope may register this "
                                         f"version: {why}.", "format" if runs_code else
                                         "trusted_types")
        if not trust:
            hint = ("" if runs_code else " (skops rebuilds only the types it trusts by "
                    "default; scikit-learn's trees and boosters hold such types)")
            raise UntrustedArtifactError(
                f"Refusing to register: {why}{hint}. An admin who trusts its source must "
                "send trust=true (CLI: aiwarden registry register --trust; SDK: "
                "register_version(..., trust=True)).", "trust")
        return actor

    def _model(self, name: str, task: str | None) -> repo.ModelRow:
        with self.db.read() as conn:
            try:
                return repo.get_model(conn, name)
            except repo.NotFound:
                pass
        try:
            with self.db.write() as conn:
                model = repo.create_model(conn, name, task)
        except repo.Conflict:  # a concurrent registration created it first
            with self.db.read() as conn:
                return repo.get_model(conn, name)
        if self.on_new_model is not None:
            self.on_new_model(name, task)
        return model

    # --------------------------------------------------------------------- read
    def models(self) -> list[dict[str, Any]]:
        """Models with registered versions: how many, the latest, and their aliases."""
        with self.db.read() as conn:
            out = []
            for model in repo.list_models(conn):
                found = _repo.versions(conn, model)
                if found:
                    names = _repo.labels(conn, model.id)
                    out.append({"name": model.name, "versions": len(found),
                                "latest": found[-1].version,
                                "aliases": {a: names[v] for a, v in
                                            sorted(_repo.aliases(conn, model.id).items())}})
            return out

    def versions(self, name: str) -> list[VersionInfo]:
        with self.db.read() as conn:
            return _repo.versions(conn, repo.get_model(conn, name))

    def get(self, name: str, version: str | None = None, *,
            alias: str | None = None) -> VersionInfo:
        """A version by label, by alias, or (neither given) the latest registered one."""
        with self.db.read() as conn:
            return self._get(conn, repo.get_model(conn, name), version, alias)

    def _get(self, conn: Any, model: repo.ModelRow, version: str | None,
             alias: str | None) -> VersionInfo:
        if version is not None and alias is not None:
            raise ParameterError("Give a version or an alias, not both.", "alias")
        if alias is not None:
            vid = _repo.alias_target(conn, model.id, check_alias(alias))
            if vid is None:
                raise repo.NotFound(f"Model {model.name!r} has no alias {alias!r}.", "alias")
            found = _repo.versions(conn, model, version_id=vid)
        else:
            found = _repo.versions(conn, model, version=version, latest=version is None)
        if not found:
            what = f"registered version {version!r}" if version else "registered version"
            raise repo.NotFound(f"Model {model.name!r} has no {what}.", "version")
        return found[0]

    def aliases(self, name: str) -> dict[str, str]:
        """alias → version label."""
        with self.db.read() as conn:
            model = repo.get_model(conn, name)
            names = _repo.labels(conn, model.id)
            return {a: names[v] for a, v in sorted(_repo.aliases(conn, model.id).items())}

    def artifact(self, name: str, version: str | None = None, *,
                 alias: str | None = None) -> tuple[VersionInfo, bytes]:
        """The version and its bytes, verified against the SHA-256 recorded at upload."""
        info = self.get(name, version, alias=alias)
        data = self.store.get(info.uri)
        actual = hashlib.sha256(data).hexdigest()
        if actual != info.sha256:
            # where it lies is for the operator's log, not for an API client
            log.error("artifact of %s version %s changed: store %s, key %s, SHA-256 %s "
                      "(registered %s)", name, info.version, self.store.url, info.uri, actual,
                      info.sha256)
            raise ArtifactIntegrityError(
                f"The artifact of {name} version {info.version} has changed since it was "
                f"registered: its SHA-256 is {actual}, the registry recorded {info.sha256}; "
                "refusing to use it. The server log names the stored file.",
                expected=info.sha256, actual=actual)
        return info, data

    def load(self, name: str, version: str | None = None, *,
             alias: str | None = None) -> Predictor:
        """A :class:`Predictor` for the version; the bytes are verified at every load."""
        info, data = self.artifact(name, version, alias=alias)
        fmt = get_format(info.format)
        return fmt.load(data, trusted_types=info.trusted_types,
                        trusted=info.trusted_by is not None, entry_point=info.entry_point,
                        inputs=info.metadata.get("inputs"), model=name, version=info.version,
                        sha256=info.sha256)

    # ------------------------------------------------------------------ aliases
    def set_alias(self, name: str, alias: str, version: str, *, reason: str,
                  actor: str = "anonymous", kind: str = "set",
                  expected: str | None = UNSET) -> AliasEvent | None:
        """Point ``alias`` at ``version`` in one transaction, under the model's write lock.

        ``expected`` makes the move conditional on where the alias points now (a version
        label, or None for "not set"): an automated rollback moves only what it saw.
        Returns the recorded event, or None when the alias already pointed there.
        """
        check_alias(alias)
        reason = _reason(reason)
        if kind not in _KINDS:
            raise ParameterError(f"kind: expected one of {list(_KINDS)}; got {kind!r}.", "kind")
        model = self._existing(name)
        with self.db.write(model.id) as conn:
            target = self._get(conn, model, version, None)
            current = _repo.alias_target(conn, model.id, alias)
            self._expect(conn, model, alias, current, expected)
            if current == target.version_id:
                return None
            _repo.upsert_alias(conn, model.id, alias, target.version_id, actor,
                               current is not None)
            return _repo.add_event(conn, model, alias, current, target.version_id, kind, actor,
                                   reason)

    def delete_alias(self, name: str, alias: str, *, reason: str, actor: str = "anonymous",
                     expected: str | None = UNSET) -> AliasEvent:
        check_alias(alias)
        reason = _reason(reason)
        model = self._existing(name)
        with self.db.write(model.id) as conn:
            current = _repo.alias_target(conn, model.id, alias)
            if current is None:
                raise repo.NotFound(f"Model {name!r} has no alias {alias!r}.", "alias")
            self._expect(conn, model, alias, current, expected)
            _repo.remove_alias(conn, model.id, alias)
            return _repo.add_event(conn, model, alias, current, None, "delete", actor, reason)

    @staticmethod
    def _expect(conn: Any, model: repo.ModelRow, alias: str, current: int | None,
                expected: str | None) -> None:
        if expected is UNSET:
            return
        now = None if current is None else _repo.labels(conn, model.id).get(current)
        if now != expected:
            raise repo.Conflict(f"Alias {alias!r} of {model.name!r} points at "
                                f"{now or 'nothing'}, not {expected or 'nothing'} as expected; "
                                "someone moved it first.", "expected_version")

    def history(self, name: str, alias: str | None = None, limit: int = 100
                ) -> list[AliasEvent]:
        """Every move, newest first: who moved which alias from what to what, when and why."""
        with self.db.read() as conn:
            return _repo.events(conn, repo.get_model(conn, name),
                                None if alias is None else check_alias(alias), limit)

    def previous(self, name: str, alias: str) -> VersionInfo | None:
        """The version ``alias`` pointed at before its latest move (None if it never moved)."""
        with self.db.read() as conn:
            model = repo.get_model(conn, name)
            moves = _repo.events(conn, model, check_alias(alias), limit=1, moved_from=True)
            if not moves or moves[0].from_version is None:
                return None
            return self._get(conn, model, moves[0].from_version, None)

    def rollback_target(self, name: str, alias: str
                        ) -> tuple[VersionInfo | None, AliasEvent | None, str | None]:
        """``(target, latest move, why not)``: where rolling ``alias`` back would take it.

        The version before the latest move, unless that move was itself a rollback: going
        "back" then would redeploy the version just rolled away from (after an automatic
        rollback of a canary, "back" is the bad version). ``why not`` says so in a sentence.
        """
        with self.db.read() as conn:
            model = repo.get_model(conn, name)
            moves = _repo.events(conn, model, check_alias(alias), limit=1)
            last = moves[0] if moves else None
            if last is None or last.from_version is None:
                return None, last, (f"{alias} never pointed at another version: there is "
                                    "nothing to go back to.")
            if last.kind == "rollback":
                return None, last, (
                    f"{alias} was already rolled back from version {last.from_version} to "
                    f"{last.to_version} by {last.actor}; going back again would redeploy "
                    f"version {last.from_version}. Promote a version to move it on.")
            return self._get(conn, model, last.from_version, None), last, None

    def _existing(self, name: str) -> repo.ModelRow:
        with self.db.read() as conn:
            return repo.get_model(conn, name)


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ParameterError("reason: say why the alias moves; the history keeps it.",
                             "reason")
    return reason.strip()[:2000]
