"""Traffic policies in the database, and the cheap change counter gateways poll.

A gateway must notice an alias move or a policy change within a second without reloading
anything when nothing changed. Both leave a monotonic trace: every alias move appends an
``alias_events`` row (append-only, so its largest id only grows) and every policy write
bumps ``traffic_policies.revision``. The pair is the *stamp*: one indexed query that
gateways run a few times a second, and reload only when it differs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import func, select

from aiwarden.gateway.policy import TrafficPolicy
from aiwarden.registry import Registry
from aiwarden.store import models_repo as repo
from aiwarden.store.tables import alias_events, traffic_policies

__all__ = ["PolicyStore", "Stamp"]

Stamp = tuple[int, int]  # (newest alias event id, policy revision); 0 for none


class PolicyStore:
    """Read, check and write per-model traffic policies."""

    def __init__(self, registry: Registry) -> None:
        self.registry, self.db = registry, registry.db

    def model_id(self, name: str) -> int:
        with self.db.read() as conn:
            return repo.get_model(conn, name).id

    def stamp(self, model_id: int) -> Stamp:
        """What changes whenever an alias of the model moves or its policy is written."""
        moved = select(func.max(alias_events.c.id)).where(
            alias_events.c.model_id == model_id).scalar_subquery()
        rev = select(traffic_policies.c.revision).where(
            traffic_policies.c.model_id == model_id).scalar_subquery()
        with self.db.read() as conn:
            row = conn.execute(select(moved, rev)).one()
        return int(row[0] or 0), int(row[1] or 0)

    def policy(self, model_id: int) -> TrafficPolicy:
        with self.db.read() as conn:
            spec = conn.execute(select(traffic_policies.c.spec).where(
                traffic_policies.c.model_id == model_id)).scalar()
        return TrafficPolicy() if spec is None else TrafficPolicy.from_dict(orjson.loads(spec))

    def get(self, name: str) -> dict[str, Any]:
        """The policy with who set it, when and why (``mode: off`` when never set)."""
        with self.db.read() as conn:
            model = repo.get_model(conn, name)
            row = conn.execute(select(traffic_policies).where(
                traffic_policies.c.model_id == model.id)).first()
        if row is None:
            return {"model": name, "mode": "off", "revision": 0, "updated_at": None,
                    "updated_by": None, "reason": None}
        policy = TrafficPolicy.from_dict(orjson.loads(row.spec))
        return {"model": name, **policy.to_dict(), "revision": row.revision,
                "updated_at": row.updated_at, "updated_by": row.updated_by,
                "reason": row.reason}

    def set(self, name: str, policy: TrafficPolicy | Mapping[str, Any], *,
            actor: str = "anonymous", reason: str | None = None) -> dict[str, Any]:
        """Check that every target resolves now (a version registered, an alias set), then
        store the policy and bump the revision under the model's write lock."""
        if not isinstance(policy, TrafficPolicy):
            policy = TrafficPolicy.from_dict(policy)
        self.check_targets(name, policy)
        with self.db.read() as conn:
            model = repo.get_model(conn, name)
        spec = orjson.dumps(policy.to_dict()).decode()
        now = time.time()
        with self.db.write(model.id) as conn:
            rev = conn.execute(select(traffic_policies.c.revision).where(
                traffic_policies.c.model_id == model.id)).scalar()
            values = {"mode": policy.mode, "spec": spec, "updated_at": now,
                      "updated_by": actor[:200], "reason": (reason or None) and reason[:2000],
                      "revision": (rev or 0) + 1}
            if rev is None:
                conn.execute(traffic_policies.insert().values(model_id=model.id, **values))
            else:
                conn.execute(traffic_policies.update().where(
                    traffic_policies.c.model_id == model.id).values(values))
        return self.get(name)

    def check_targets(self, name: str, policy: TrafficPolicy) -> None:
        aliases = self.registry.aliases(name)
        field = "weights" if policy.mode == "ab" else "challenger"
        for target in policy.targets:
            if target.startswith("@"):
                if target[1:] not in aliases:
                    raise repo.NotFound(f"Model {name!r} has no alias {target[1:]!r} for the "
                                        "traffic policy to follow.", field)
            elif not any(v.version == target for v in self.registry.versions(name)):
                raise repo.NotFound(f"Model {name!r} has no registered version {target!r} "
                                    "to send traffic to.", field)
