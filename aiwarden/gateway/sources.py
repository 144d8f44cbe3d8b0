"""Where a gateway learns what to serve, loads versions from, and sends events to.

In the server a gateway reads the registry's database directly (:class:`DatabaseSource`)
and logs through the ``Monitor``; a standalone ``aiwarden serve`` process asks a server
over HTTP (:class:`RemoteSource`) and logs through the SDK. Both answer the same three
questions: the stamp (has anything changed?), the state (aliases and policy), and a
loaded version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from aiwarden.engine.schema import Schema
from aiwarden.gateway.policies import PolicyStore
from aiwarden.gateway.policy import TrafficPolicy
from aiwarden.registry import ArtifactIntegrityError, Predictor, Registry
from aiwarden.registry.formats import get_format
from aiwarden.store import models_repo as repo

__all__ = ["DatabaseSource", "RemoteSource", "ServingState", "Source", "client_sink",
           "monitor_sink"]


@dataclass(frozen=True)
class ServingState:
    """What a gateway serves: read after ``stamp``, so a change in between is seen twice
    (reloaded once more), never missed."""

    stamp: Any
    aliases: dict[str, str] = field(default_factory=dict)  # alias → version label
    policy: TrafficPolicy = field(default_factory=TrafficPolicy)

    def to_dict(self) -> dict[str, Any]:
        return {"stamp": list(self.stamp), "aliases": self.aliases,
                "policy": self.policy.to_dict()}


class Source(Protocol):
    name: str

    def stamp(self) -> Any: ...

    def state(self) -> ServingState: ...

    def load(self, version: str) -> Predictor: ...


class DatabaseSource:
    """The registry and policies of this process's database (the server's gateway)."""

    def __init__(self, policies: PolicyStore, name: str) -> None:
        self.policies, self.name = policies, name
        self.model_id = policies.model_id(name)  # NotFound for an unknown model

    def stamp(self) -> Any:
        return self.policies.stamp(self.model_id)

    def state(self) -> ServingState:
        stamp = self.stamp()
        return ServingState(stamp, self.policies.registry.aliases(self.name),
                            self.policies.policy(self.model_id))

    def load(self, version: str) -> Predictor:
        return self.policies.registry.load(self.name, version)

    def schema(self, version: str) -> Schema | None:
        """The schema monitoring holds for the version (its own, else the one it inherits,
        as ingest picks it): what a request is checked against (gateway/_check.py)."""
        with self.policies.registry.db.read() as conn:
            model = repo.get_model(conn, self.name)
            row = repo.get_version(conn, model, version)
            if row.schema is not None:
                return row.schema
            serving = repo.get_version(conn, model)
            src = repo.inherits_from(row, repo.list_versions(conn, model), serving)
            return None if src is None else src.schema


class RemoteSource:
    """A server's registry through its API (``aiwarden serve --url``); artifacts are
    downloaded, checked against the SHA-256 the registry recorded, and loaded here."""

    def __init__(self, client: Any, name: str) -> None:
        self.client, self.name = client, name
        self._path = f"/models/{quote(name, safe='')}/gateway/state"
        self._known: Any = None
        self._fresh: ServingState | None = None

    def _get(self, since: Any = None) -> dict[str, Any]:
        from aiwarden.sdk.client import ApiError

        params = {"since": ".".join(map(str, since))} if since is not None else None
        try:
            return self.client._json("GET", self._path, params=params)
        except ApiError as exc:
            if exc.status == 404:
                raise repo.NotFound(exc.message, exc.field) from None
            raise

    def stamp(self) -> Any:
        """One small request: the server answers only the stamp while it equals the one
        this source last loaded, the whole state (kept for :meth:`state`) otherwise."""
        doc = self._get(since=self._known)
        if "aliases" in doc:
            self._fresh = self._parse(doc)
        return tuple(doc["stamp"])

    def state(self) -> ServingState:
        fresh, self._fresh = self._fresh, None
        state = fresh or self._parse(self._get())
        self._known = state.stamp
        return state

    @staticmethod
    def _parse(doc: dict[str, Any]) -> ServingState:
        return ServingState(tuple(doc["stamp"]), dict(doc["aliases"]),
                            TrafficPolicy.from_dict(doc["policy"]))

    def load(self, version: str) -> Predictor:
        info = self.client.registered_version(self.name, version)
        data = self.client.download_artifact(self.name, version)
        actual = hashlib.sha256(data).hexdigest()
        if actual != info["sha256"]:
            raise ArtifactIntegrityError(
                f"The download of {self.name} version {version} has SHA-256 {actual}, the "
                f"registry recorded {info['sha256']}; refusing to use it.",
                expected=info["sha256"], actual=actual)
        return get_format(info["format"]).load(
            data, trusted_types=info.get("trusted_types") or [],
            trusted=info.get("trusted_by") is not None, entry_point=info.get("entry_point"),
            inputs=(info.get("metadata") or {}).get("inputs"), model=self.name,
            version=info["version"], sha256=info["sha256"])


def monitor_sink(monitor: Any, name: str) -> Callable[[list[dict[str, Any]]], Any]:
    """Events straight into the server's ``Monitor`` (same process, same transaction rules)."""
    return lambda rows: monitor.log_predictions(name, rows)


def client_sink(client: Any, name: str) -> Callable[[list[dict[str, Any]]], Any]:
    """Events to a server's ingest API through the SDK (idempotent, so retries are safe)."""
    return lambda rows: client.log_predictions(name, rows)


def registry_source(registry: Registry) -> Callable[[str], DatabaseSource]:
    """A factory of database sources sharing one policy store."""
    policies = PolicyStore(registry)
    return lambda name: DatabaseSource(policies, name)
