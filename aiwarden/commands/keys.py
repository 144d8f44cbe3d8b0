"""``aiwarden keys``: create, list and revoke API keys, straight in the store."""

from __future__ import annotations

import argparse
from typing import Any

from aiwarden.commands._common import (
    Exit,
    add_output_options,
    add_store_options,
    emit,
    fail,
    store_settings,
)

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("keys", help="manage API keys (stored hashed)")
    ks = p.add_subparsers(dest="keys_command", required=True)
    c = ks.add_parser("create", help="create a key; it is printed once")
    c.add_argument("name", help="who or what the key is for")
    c.add_argument("--scopes", default="ingest,read",
                   help="comma list of read, ingest, operate, admin (default ingest,read; "
                        "see docs/api.md, Scopes)")
    add_store_options(c)
    c.set_defaults(func=_create)
    ls = ks.add_parser("list", help="list keys (never their secrets)")
    add_store_options(ls)
    add_output_options(ls)
    ls.set_defaults(func=_list)
    r = ks.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("key_id")
    add_store_options(r)
    r.set_defaults(func=_revoke)


def _db(args: argparse.Namespace) -> Any:
    from aiwarden.store.database import Database

    db = Database(store_settings(args).url)
    db.migrate()
    return db


def _create(args: argparse.Namespace) -> int:
    from aiwarden.errors import ParameterError
    from aiwarden.store import keys

    db = _db(args)
    try:
        with db.write() as conn:
            key, info = keys.create_key(conn, args.name, [s.strip() for s in
                                                          args.scopes.split(",") if s.strip()])
    except ParameterError as exc:
        return fail("keys create", str(exc))
    finally:
        db.dispose()
    print(key)
    print(f"# id {info.key_id}, scopes {','.join(info.scopes)}: store it now, it is not "
          "shown again")
    return 0


def _list(args: argparse.Namespace) -> int:
    from aiwarden.monitoring.windows import to_iso
    from aiwarden.store import keys

    db = _db(args)
    with db.read() as conn:
        rows = keys.list_keys(conn)
    db.dispose()
    data = [{"id": k.key_id, "name": k.name, "scopes": list(k.scopes),
             "created_at": to_iso(k.created_at),
             "revoked_at": to_iso(k.revoked_at) if k.revoked_at else None} for k in rows]
    return emit(args, data, _list_table)


def _list_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'id':<14}{'name':<24}{'scopes':<27}{'created':<22}revoked")
    for k in rows:
        revoked = k["revoked_at"][:19] if k["revoked_at"] else "-"
        print(f"{k['id']:<14}{k['name'][:23]:<24}{','.join(k['scopes']):<27}"
              f"{k['created_at'][:19]:<22}{revoked}")


def _revoke(args: argparse.Namespace) -> int:
    from aiwarden.store import keys

    db = _db(args)
    with db.write() as conn:
        done = keys.revoke_key(conn, args.key_id)
    db.dispose()
    if not done:
        return fail("keys revoke", f"no active key with id {args.key_id!r}", Exit.NOT_FOUND)
    print(f"revoked {args.key_id}")
    return 0
