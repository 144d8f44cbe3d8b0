"""``aiwarden serve NAME`` (a standalone gateway process) and ``aiwarden traffic NAME``
(show or set the model's traffic policy), both against a server URL."""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import quote

from aiwarden.commands._common import (
    add_client_options,
    add_output_options,
    emit,
    exit_code,
    fail,
    print_fields,
)

__all__ = ["SWITCH_INTERVAL", "latency_first", "register"]

#: The GIL switch interval of a serving process, in seconds (CPython's default: 0.005).
#: A request that arrives while one of the process's own threads (the alias poll, the event
#: sender, the resource sampler) holds the GIL waits up to this long for it; at the default
#: that wait was all of ``aiwarden serve``'s p99 over in-process scikit-learn on a core of
#: its own (bench/workers.py --pin: +5.2 ms, and +1.1 ms at 0.5 ms; docs/deployment.md).
SWITCH_INTERVAL = 0.0005


def latency_first() -> None:
    """Hand the GIL to a waiting thread after ``SWITCH_INTERVAL``: requests first, at the
    price of more hand-offs between the background threads, whose work is short."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve a model's version behind an alias (predict API, "
                       "traffic policy, events and resource usage logged to the server)")
    p.add_argument("name")
    p.add_argument("--alias", default="champion", help="the alias to serve (default champion)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    add_client_options(p)
    p.add_argument("--poll", type=float, help="seconds between checks for alias/policy "
                   "changes (env AIWARDEN_GATEWAY_POLL; default 0.25)")
    p.add_argument("--queue", type=int, help="events waiting to be logged, at most; more are "
                   "dropped and counted (env AIWARDEN_GATEWAY_QUEUE; default 10000)")
    p.add_argument("--resources-every", type=float, help="seconds between resource samples, "
                   "0 for none (env AIWARDEN_GATEWAY_RESOURCES_EVERY; default 15); prices "
                   "from AIWARDEN_PRICE_CPU_CORE_HOUR, _MEMORY_GIB_HOUR, _GPU_HOUR")
    p.set_defaults(func=_serve)

    t = sub.add_parser("traffic", help="show or set a model's traffic policy (canary, shadow, "
                       "A/B, off)")
    t.add_argument("name")
    mode = t.add_mutually_exclusive_group()
    mode.add_argument("--canary", type=float, metavar="PERCENT",
                      help="send PERCENT %% of requests to --challenger")
    mode.add_argument("--shadow", metavar="TARGET", help="a version (or @alias) that gets a "
                      "copy of every request; callers get the served alias's answer")
    mode.add_argument("--ab", metavar="T=W,...", help="A/B weights, e.g. 1=50,2=50")
    mode.add_argument("--off", action="store_true", help="the served alias answers everything")
    t.add_argument("--challenger", default="@challenger",
                   help="the canary's version or @alias (default @challenger)")
    t.add_argument("--sticky-key", help="feature or tag whose value keeps a caller on one "
                   "version (canary, A/B)")
    t.add_argument("--alias", default="champion", help="the served alias the policy applies "
                   "to (default champion); gateways serving other aliases ignore it")
    t.add_argument("--reason", help="kept with the policy")
    add_client_options(t)
    add_output_options(t, default="json")
    t.set_defaults(func=_traffic)


def _policy(args: argparse.Namespace) -> dict[str, Any] | None:
    from aiwarden.gateway import parse_weights

    if args.off:
        return {"mode": "off"}
    if args.canary is not None:
        body = {"mode": "canary", "percent": args.canary, "challenger": args.challenger}
    elif args.shadow is not None:
        body = {"mode": "shadow", "challenger": args.shadow}
    elif args.ab is not None:
        body = {"mode": "ab", "weights": parse_weights(args.ab)}
    else:
        return None
    if args.sticky_key:
        body["sticky_key"] = args.sticky_key
    if args.alias != "champion":
        body["alias"] = args.alias
    return body


def _traffic(args: argparse.Namespace) -> int:
    from aiwarden.errors import AiwardenError
    from aiwarden.sdk import Client

    try:
        body = _policy(args)
        with Client(args.url, args.api_key) as client:
            path = f"/models/{quote(args.name, safe='')}/traffic"
            if body is None:
                out = client._json("GET", path)
            else:
                if args.reason:
                    body["reason"] = args.reason
                out = client._json("PUT", path, json=body)
    except AiwardenError as exc:
        return fail("traffic", str(exc), exit_code(exc))
    return emit(args, out, print_fields)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from aiwarden.errors import AiwardenError
    from aiwarden.gateway.standalone import create_serving_app, remote_hub
    from aiwarden.process_usage import Prices
    from aiwarden.server.origin import CrossSiteGuard
    from aiwarden.server.settings import ServerSettings

    s = ServerSettings.from_env()
    latency_first()
    try:
        guardrail = _task(args) == "text_generation"
    except AiwardenError as exc:
        return fail("serve", f"cannot serve {args.name}: {exc}", exit_code(exc))
    if guardrail:  # an LLM application: its guardrail's chat completions (docs/gateway.md)
        return _serve_guardrail(args, s)
    hub = remote_hub(
        args.url, args.api_key, poll=s.gateway_poll if args.poll is None else args.poll,
        max_queue=s.gateway_queue if args.queue is None else args.queue,
        resources_every=(s.gateway_resources_every if args.resources_every is None
                         else args.resources_every),
        prices=Prices(s.price_cpu_core_hour, s.price_memory_gib_hour, s.price_gpu_hour))
    try:
        try:
            app = create_serving_app(hub, args.name, args.alias)
            # a page in the user's browser must not predict (and so log) through it either
            app = CrossSiteGuard(app, loopback_only=_loopback(args.host),
                                 allowed_hosts=s.host_list, allowed_origins=s.origin_list,
                                 data_paths=("/",))
        except AiwardenError as exc:
            return fail("serve", f"cannot serve {args.name}@{args.alias}: {exc}",
                        exit_code(exc))
        version = hub.get(args.name, args.alias).version
        print(f"aiwarden serve: {args.name}@{args.alias} (version {version}) on "
              f"http://{args.host}:{args.port}/predict, logging to {args.url}",
              file=sys.stderr, flush=True)
        server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port,
                                               log_level="warning", access_log=False))
        server.run()
        return 0 if server.started else 2  # could not listen (docs/cli.md: usage)
    finally:
        hub.close()


def _task(args: argparse.Namespace) -> str | None:
    from aiwarden.sdk import Client

    with Client(args.url, args.api_key, timeout=10) as client:
        return client.get_model(args.name).get("task")


def _serve_guardrail(args: argparse.Namespace, s: Any) -> int:
    import uvicorn

    from aiwarden.egress import EgressPolicy
    from aiwarden.errors import AiwardenError
    from aiwarden.gateway.standalone import create_guardrail_app, remote_guardrails
    from aiwarden.server.origin import CrossSiteGuard

    proxy = remote_guardrails(args.url, args.api_key, egress=EgressPolicy(s.egress_allow),
                              max_queue=s.gateway_queue if args.queue is None else args.queue)
    try:
        try:
            app = CrossSiteGuard(create_guardrail_app(proxy, args.name),
                                 loopback_only=_loopback(args.host), allowed_hosts=s.host_list,
                                 allowed_origins=s.origin_list, data_paths=("/",))
        except AiwardenError as exc:
            return fail("serve", f"cannot serve {args.name}'s guardrail: {exc}",
                        exit_code(exc))
        print(f"aiwarden serve: {args.name}'s guardrail on http://{args.host}:{args.port}"
              f"/v1/chat/completions, logging to {args.url}", file=sys.stderr, flush=True)
        server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port,
                                               log_level="warning", access_log=False))
        server.run()
        return 0 if server.started else 2
    finally:
        proxy.close()


def _loopback(host: str) -> bool:
    from aiwarden.server.settings import ServerSettings

    return ServerSettings(host=host).loopback
