"""``aiwarden demo``: the server with the dashboard and a story that exercises the loop.

By default the demo writes to a fresh temporary folder, so every run tells the whole story
from the start, and removes it when stopped (Ctrl-C or SIGTERM); ``--data-dir`` keeps it.
``--offline`` prints the engine's story instead, without a server. ``--story chatbot`` tells
the LLM story (aiwarden.demo.chatbot) instead of the fraud model's, ``--story fruit`` the image
model's (aiwarden.demo.fruit).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from aiwarden.commands._common import fail

if TYPE_CHECKING:
    from aiwarden.server.settings import ServerSettings

__all__ = ["demo_settings", "register"]

DEMO_ENTRY = "aiwarden.demo.training:train"  # the fraud story's retraining pipeline
DEMO_HOST = "127.0.0.1"  # the demo listens on loopback only


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the server with a live fraud model whose story "
                       "(late labels, a corrupted batch, drift, a bad canary, an automatic "
                       "rollback) plays out in a few minutes (--story chatbot: an LLM "
                       "support bot's; --story fruit: a kiosk's image classifier)")
    p.add_argument("--port", type=int, help="port (env AIWARDEN_PORT; default 8000)")
    p.add_argument("--data-dir", help="keep the demo's data here (default: a fresh "
                   "temporary folder)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="play the story this many times faster (default 1: ~4 minutes)")
    p.add_argument("--story", choices=("fraud", "chatbot", "fruit"), default="fraud",
                   help="fraud (default): a fraud model's loop (late labels, a corrupted "
                   "batch, drift, a bad canary, an automatic rollback, a gated retrain); "
                   "chatbot: a support bot's new prompt version encourages self-harm for "
                   "one locale, the "
                   "guardrail blocks it, the unsafe-rate alert, its RCA and the automatic "
                   "rollback follow; fruit: a self-checkout kiosk's fruit classifier "
                   "calls one store's bananas cucumbers after its lights change, the "
                   "confusion alert and RCA follow, and the retraining pipeline's image "
                   "audit blocks a corrupted training photograph")
    p.add_argument("--offline", action="store_true",
                   help="print the engine's story on generated data, without a server")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.offline and args.story != "fraud":
        return fail("demo", "--offline tells the fraud story only")
    if args.offline:
        from aiwarden.demo.offline import run_demo

        run_demo(seed=args.seed, out=sys.stdout)
        return 0
    if args.speed <= 0:
        return fail("demo", "--speed must be positive")
    if args.port is not None and not 0 < args.port < 65536:
        return fail("demo", f"--port must be between 1 and 65535 (got {args.port})")
    from aiwarden.demo.story import start_story
    from aiwarden.server.run import serve

    llm = None
    extra: dict[str, Any] = {}
    if args.story == "chatbot":  # the bot's fake LLM, on loopback: the egress policy allows it
        from aiwarden.demo.chatbot_upstream import FakeSupportLLM

        llm = FakeSupportLLM().start()
        extra["egress_allow"] = ",".join(filter(None, (
            os.environ.get("AIWARDEN_EGRESS_ALLOW", ""), f"127.0.0.1:{llm.port}")))
    temporary = not args.data_dir
    data = args.data_dir or tempfile.mkdtemp(prefix="aiwarden-demo-")
    settings = demo_settings(args.port, data, speed=args.speed, story=args.story, **extra)
    if not _port_free(settings.host, settings.port):  # checked after the settings (a bad
        # AIWARDEN_* is named first); else uvicorn fails to bind while the story plays
        # against whatever server owns the port
        if llm is not None:
            llm.close()
        if temporary:
            shutil.rmtree(data, ignore_errors=True)
        return fail("demo", f"port {settings.port} is in use; choose another with --port")
    url = f"http://127.0.0.1:{settings.port}"
    print(f"aiwarden demo: dashboard {url}/  ·  API {url}/docs  ·  data {data}\n"
          f"Ctrl-C stops it{' and removes the temporary folder' if temporary else ''}.",
          flush=True)
    stories: list[Any] = []

    def on_started() -> None:
        if llm is not None:
            from aiwarden.demo.chatbot import start_chatbot_story

            stories.append(start_chatbot_story(url, llm.base_url, speed=args.speed,
                                               seed=args.seed))
        elif args.story == "fruit":
            from aiwarden.demo.fruit import start_fruit_story

            stories.append(start_fruit_story(url, os.path.join(data, "fruit-training"),
                                             speed=args.speed, seed=args.seed))
        else:
            stories.append(start_story(url, speed=args.speed, seed=args.seed))

    trusted = os.environ.get("AIWARDEN_SKOPS_TRUSTED")
    if llm is None:  # the registry (made in serve) trusts the demo model's skops types
        from aiwarden.demo.training import trust_demo_model

        trust_demo_model()
    previous = signal.signal(signal.SIGTERM, _stopped)  # uvicorn re-raises it after shutdown
    try:
        return serve(settings, on_started=on_started)
    except (KeyboardInterrupt, _Stopped):
        return 0  # asked to stop: the server has shut down gracefully
    finally:
        signal.signal(signal.SIGTERM, previous)
        if trusted is None:  # the environment as it was (the CLI may run inside a test)
            os.environ.pop("AIWARDEN_SKOPS_TRUSTED", None)
        else:
            os.environ["AIWARDEN_SKOPS_TRUSTED"] = trusted
        for story in stories:
            story.stop_event.set()
            # a story in its loop ends at once; one still training its models cannot be
            # interrupted and is a daemon: Ctrl-C does not wait seconds for it
            story.join(timeout=0.1 if getattr(story, "fitting", False) else 3)
        if llm is not None:
            llm.close()
        if temporary:
            shutil.rmtree(data, ignore_errors=True)
            print(f"aiwarden demo: stopped; removed {data}", flush=True)


def demo_settings(port: int | None, data_dir: str, *, speed: float = 1.0, story: str = "fraud",
                  **overrides: Any) -> ServerSettings:
    """The demo server's settings: loopback, open (no keys) and still closed to code-running
    artifacts (no --allow-code-artifacts, issue 11): the fraud story's retraining pipeline
    runs the demo's own ``aiwarden.demo.training:train``, listed in ``trusted_entries``.
    ``port`` None: AIWARDEN_PORT, else 8000, as ``aiwarden server`` (from_env reads it)."""
    from aiwarden.server.settings import ServerSettings

    if story == "fraud":
        overrides["trusted_entries"] = ",".join(filter(None, (
            os.environ.get("AIWARDEN_TRUSTED_ENTRIES", ""), DEMO_ENTRY)))
    elif story == "fruit":  # the kiosk story's retraining pipeline
        from aiwarden.demo.fruit import FRUIT_ENTRY

        overrides["trusted_entries"] = ",".join(filter(None, (
            os.environ.get("AIWARDEN_TRUSTED_ENTRIES", ""), FRUIT_ENTRY)))
    # AIWARDEN_EVALUATE_EVERY / _LOG_LEVEL win when set (read and checked by from_env)
    defaults = {
        "evaluate_every": None if os.environ.get("AIWARDEN_EVALUATE_EVERY") else 10 / speed,
        "log_level": None if os.environ.get("AIWARDEN_LOG_LEVEL") else "warning"}
    return ServerSettings.from_env(host=DEMO_HOST, port=port, data_dir=data_dir,
                                   **(defaults | overrides))


def _port_free(host: str, port: int) -> bool:
    """Whether a listening socket can be bound at ``host:port`` now, as uvicorn binds it
    (SO_REUSEADDR: a port in TIME_WAIT is free, one with a listener is not)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class _Stopped(Exception):
    """SIGTERM, raised where the main thread is so the clean-up runs."""


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped(signum)
