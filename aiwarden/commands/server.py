"""``aiwarden server``: the API (and, with --demo, a demo model receiving traffic)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from aiwarden.commands._common import add_store_options, fail, store_settings

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("server", help="run the aiwarden server",
                       description="Serve the REST API (/api/v1, docs at /docs). Settings "
                                   "come from flags or AIWARDEN_* environment variables.")
    p.add_argument("--host", help="bind address (env AIWARDEN_HOST; default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (env AIWARDEN_PORT; default 8000)")
    add_store_options(p)
    p.add_argument("--bucket-seconds", type=int,
                   help="width of the smallest profiled time bucket (default 60)")
    p.add_argument("--retention-days", type=float,
                   help="how long raw events are kept (default 30; 0: forever); profiles stay")
    p.add_argument("--allowed-hosts", help="comma-separated Host names this server answers "
                   "to besides loopback names (env AIWARDEN_ALLOWED_HOSTS; see docs/security.md)")
    p.add_argument("--allowed-origins", help="comma-separated browser origins that may change "
                   "state, e.g. https://aiwarden.example (env AIWARDEN_ALLOWED_ORIGINS)")
    p.add_argument("--allow-code-artifacts", action="store_true", default=None,
                   help="accept pickle, joblib and entry-point artifacts while the server has "
                   "no API keys (env AIWARDEN_ALLOW_CODE_ARTIFACTS): only if no one else can "
                   "reach it")
    p.add_argument("--egress-allow", help="comma-separated networks, addresses or host names "
                   "(each optionally :port) that receivers may reach although private, "
                   "loopback or link-local (env AIWARDEN_EGRESS_ALLOW; see docs/alerting.md)")
    p.add_argument("--llm-evaluators", metavar="FILE", help="a YAML file of model-based LLM "
                   "evaluators run on ingest: an OpenAI-compatible moderation endpoint, a local "
                   "classifier (env AIWARDEN_LLM_EVALUATORS; docs/llm-evaluators.md)")
    p.add_argument("--workers", type=int, default=None,
                   help="server processes sharing the port and one PostgreSQL database (env "
                   "AIWARDEN_WORKERS; default 1); the lease holder among them evaluates, "
                   "notifies and runs retention (docs/server.md, Several processes)")
    p.add_argument("--demo", action="store_true",
                   help="tell the demo's story on this server (see `aiwarden demo`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aiwarden.egress import EgressPolicy
    from aiwarden.errors import AiwardenError
    from aiwarden.server.run import serve

    try:
        settings = store_settings(args, host=args.host, port=args.port,
                                  bucket_seconds=args.bucket_seconds,
                                  retention_days=args.retention_days,
                                  allowed_hosts=args.allowed_hosts,
                                  allowed_origins=args.allowed_origins,
                                  allow_code_artifacts=args.allow_code_artifacts,
                                  egress_allow=args.egress_allow,
                                  llm_evaluators=args.llm_evaluators)
        egress = EgressPolicy(settings.egress_allow)  # a bad entry stops here, in one line
        if settings.llm_evaluators:  # so does a bad evaluator file
            from aiwarden.llm.evaluators.external import load_external

            load_external(settings.llm_evaluators, egress)
        workers = args.workers
        if workers is None:
            raw = os.environ.get("AIWARDEN_WORKERS", "").strip() or "1"
            try:
                workers = int(raw)
            except ValueError:
                raise ValueError(f"AIWARDEN_WORKERS={raw!r}: expected a whole number") from None
    except (TypeError, ValueError, AiwardenError) as exc:
        return fail("server", f"bad setting: {exc}")
    on_started = None
    if args.demo:
        from aiwarden.demo.story import start_story

        def on_started() -> None:
            start_story(f"http://127.0.0.1:{settings.port}")

    return serve(settings, on_started=on_started, workers=workers)
