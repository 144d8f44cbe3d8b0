"""The registry half of :class:`aiwarden.sdk.Client` (docs/registry.md), as a mixin.

>>> from aiwarden.sdk import Client
>>> callable(Client.register_version) and callable(Client.promote)
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import orjson

from aiwarden.sdk._errors import ApiError

__all__ = ["RegistryMixin"]

_UNSET: Any = object()


def _path(name: str, *rest: str) -> str:
    return "/registry/models/" + "/".join(quote(str(p), safe="") for p in (name, *rest))


def _artifact(artifact: Any, filename: str | None, fmt: str | None
              ) -> tuple[bytes, str | None, str | None]:
    """(bytes, filename, format) from bytes, a path, or a fitted scikit-learn model."""
    if isinstance(artifact, bytes | bytearray | memoryview):
        return bytes(artifact), filename, fmt
    if isinstance(artifact, str | Path):
        path = Path(artifact)
        return path.read_bytes(), filename or path.name, fmt
    if hasattr(artifact, "predict"):  # an estimator in memory: skops, the safe format
        try:
            import skops.io as sio
        except ImportError:
            raise ImportError("Registering a fitted model needs skops: pip install "
                              "'aiwarden[registry]' (or pass the artifact's bytes or path)."
                              ) from None

        return sio.dumps(artifact), filename or "model.skops", fmt or "skops"
    raise TypeError(f"artifact: expected bytes, a path or a fitted model; got "
                    f"{type(artifact).__name__}.")


class RegistryMixin:
    """Needs the Client's ``_http``, ``_request`` and ``_json``."""

    _http: httpx.Client

    if TYPE_CHECKING:  # provided by Client
        def _request(self, method: str, path: str, **kw: Any) -> httpx.Response: ...

        def _json(self, method: str, path: str, **kw: Any) -> Any: ...

    def register_version(self, name: str, artifact: Any, *, format: str | None = None,
                         filename: str | None = None, entry_point: str | None = None,
                         metadata: Mapping[str, Any] | None = None, version: str | None = None,
                         task: str | None = None, trust: bool = False) -> dict[str, Any]:
        """Upload an artifact as the next version of ``name`` (created if new).

        ``artifact`` is bytes, a file path, or a fitted scikit-learn model (sent as skops).
        ``metadata``: ``metrics``, ``params``, ``tags``, ``source_commit``,
        ``training_profile``, ``description``, ``inputs``. ``trust`` is an admin's word
        that a pickle/joblib/entry-point artifact may run code when loaded.
        """
        data, filename, format = _artifact(artifact, filename, format)
        fields = {"format": format, "entry_point": entry_point, "version": version,
                  "task": task, "trust": "true" if trust else None,
                  "metadata": orjson.dumps(dict(metadata)).decode() if metadata else None}
        path = _path(name, "versions")
        try:
            response = self._http.post(
                path, data={k: v for k, v in fields.items() if v is not None},
                files={"artifact": (filename or "artifact", data, "application/octet-stream")})
        except httpx.TimeoutException as exc:
            raise ApiError(0, "timeout", f"POST {path}: {exc}") from exc
        except httpx.TransportError as exc:
            raise ApiError(0, "connection_error", f"POST {path}: {exc}") from exc
        if not response.is_success:
            raise ApiError.from_response(response)
        return orjson.loads(response.content)

    def registry_models(self) -> list[dict[str, Any]]:
        """Models with registered versions: count, latest, aliases."""
        return self._json("GET", "/registry/models")

    def registered_versions(self, name: str) -> list[dict[str, Any]]:
        return self._json("GET", _path(name, "versions"))

    def registered_version(self, name: str, version: str) -> dict[str, Any]:
        return self._json("GET", _path(name, "versions", version))

    def download_artifact(self, name: str, version: str,
                          to: str | Path | None = None) -> bytes:
        """The artifact's bytes (checked here too against the server's SHA-256)."""
        response = self._request("GET", _path(name, "versions", version, "artifact"))
        data, sha = response.content, response.headers.get("x-aiwarden-sha256")
        if sha and hashlib.sha256(data).hexdigest() != sha:
            raise ApiError(0, "artifact_integrity", f"The download of {name} version {version} "
                           f"does not match its SHA-256 {sha}.")
        if to is not None:
            Path(to).write_bytes(data)
        return data

    def aliases(self, name: str) -> dict[str, str]:
        return self._json("GET", _path(name, "aliases"))

    def resolve_alias(self, name: str, alias: str) -> dict[str, Any]:
        return self._json("GET", _path(name, "aliases", alias))

    def set_alias(self, name: str, alias: str, version: str, reason: str, *,
                  kind: str = "set", expected_version: str | None = _UNSET) -> dict[str, Any]:
        """Move ``alias`` to ``version``; with ``expected_version`` only if it points there
        now (None: only if it is unset). Answers ``changed``, ``previous`` and the event."""
        body: dict[str, Any] = {"version": str(version), "reason": reason, "kind": kind}
        if expected_version is not _UNSET:
            body["expected_version"] = expected_version
        return self._json("PUT", _path(name, "aliases", alias), json=body)

    def promote(self, name: str, version: str, reason: str,
                alias: str = "champion") -> dict[str, Any]:
        return self.set_alias(name, alias, version, reason, kind="promote")

    def delete_alias(self, name: str, alias: str, reason: str) -> dict[str, Any]:
        return self._json("DELETE", _path(name, "aliases", alias), params={"reason": reason})

    def alias_history(self, name: str, alias: str | None = None,
                      limit: int = 100) -> list[dict[str, Any]]:
        """Moves, newest first (every alias of the model when ``alias`` is None)."""
        path = _path(name, "history") if alias is None else _path(name, "aliases", alias,
                                                                  "history")
        return self._json("GET", path, params={"limit": limit})

    def rollback(self, name: str, reason: str, *, alias: str = "champion",
                 to: str | None = None) -> dict[str, Any]:
        """Move ``alias`` back to its previous version (or ``to``) now; the server records
        it on the model's open incident and verifies it like an automatic rollback."""
        return self._json("POST", f"/models/{name}/rollback",
                          json={"alias": alias, "to": to, "reason": reason})

    def set_rollback_policy(self, name: str, **policy: Any) -> dict[str, Any]:
        """``alias``, ``severity``, ``rules``, ``lookback``, ``verify_for``, ``enabled``."""
        return self._json("PUT", f"/models/{name}/rollback-policy", json=policy)

    def rollback_policy(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"/models/{name}/rollback-policy")

    def previous_version(self, name: str, alias: str = "champion") -> dict[str, Any]:
        """The version ``alias`` pointed at before its latest move."""
        return self._json("GET", _path(name, "aliases", alias, "previous"))
