"""Every gateway of one process: made on first use, reloaded on demand, closed together.

The server keeps one hub; ``aiwarden serve`` keeps one with a single gateway. The hub is
what automated rollback calls after moving an alias: :meth:`GatewayHub.reload` makes this
process's gateways of the model switch now instead of at their next poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aiwarden.gateway.events import Sink
from aiwarden.gateway.gateway import Gateway
from aiwarden.gateway.sources import Source
from aiwarden.gateway.usage import UsageReporter
from aiwarden.process_usage import Prices

__all__ = ["GatewayHub"]


class GatewayHub:
    """Gateways by (model, alias), sharing one resource reporter.

    Parameters
    ----------
    source, sink : callable
        ``source(name)`` and ``sink(name)`` for a model's new gateway.
    post_usage : callable, optional
        ``post_usage(name, samples)``; resource samples are posted every
        ``resources_every`` seconds while a gateway exists (0 or None: never).
    gateway_options
        Passed to every :class:`Gateway` (``poll``, ``max_queue``, ...).
    """

    def __init__(self, source: Callable[[str], Source], sink: Callable[[str], Sink], *,
                 post_usage: Callable[[str, list[dict[str, Any]]], Any] | None = None,
                 resources_every: float = 15.0, prices: Prices | None = None,
                 **gateway_options: Any) -> None:
        self.source, self.sink, self.options = source, sink, gateway_options
        self._lock = threading.Lock()
        self._making: dict[tuple[str, str], threading.Lock] = {}
        self._gateways: dict[tuple[str, str], Gateway] = {}
        self._closed = False
        self.usage = None
        if post_usage is not None and resources_every > 0:
            self.usage = UsageReporter(post_usage, self.all, every=resources_every,
                                       prices=prices)

    def get(self, name: str, alias: str = "champion") -> Gateway:
        """The gateway of ``name``@``alias``, loading it on first use (NotFound if the
        model or the alias does not exist; nothing is kept then)."""
        key = (name, alias)
        gw = self._gateways.get(key)
        if gw is not None:
            return gw
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:  # one load per key; other models are not held up
            gw = self._gateways.get(key)
            if gw is None:
                if self._closed:
                    raise RuntimeError("Cannot serve from a closed gateway hub.")
                gw = Gateway(name, self.source(name), self.sink(name), alias=alias,
                             **self.options)
                with self._lock:
                    self._gateways[key] = gw
                    if self.usage is not None:
                        self.usage.start()
        return gw

    def peek(self, name: str, alias: str = "champion") -> Gateway | None:
        """The gateway if it is loaded already (never loads: safe on an event loop)."""
        return self._gateways.get((name, alias))

    def all(self, name: str | None = None) -> list[Gateway]:
        with self._lock:
            return [g for (n, _), g in self._gateways.items() if name is None or n == name]

    def reload(self, name: str | None = None) -> dict[str, bool]:
        """Re-read aliases and policy now for ``name``'s gateways (all when None): what a
        rollback calls right after moving an alias. ``{alias: changed}``."""
        return {f"{g.name}@{g.alias}": g.reload() for g in self.all(name)}

    def flush(self, name: str | None = None, timeout: float = 30.0) -> bool:
        return all([g.flush(timeout) for g in self.all(name)])

    def stats(self, name: str | None = None) -> list[dict[str, Any]]:
        return [g.stats() for g in self.all(name)]

    def close(self, timeout: float = 10.0) -> None:
        """Stop watching, run the queued shadow copies and send the queued events."""
        with self._lock:
            self._closed = True
            gateways, self._gateways = list(self._gateways.values()), {}
        if self.usage is not None:
            self.usage.stop()
        for g in gateways:
            g.close(timeout)
