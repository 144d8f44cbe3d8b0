"""Server settings from flags or ``AIWARDEN_*`` environment variables (flags win)."""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from aiwarden.errors import ParameterError
from aiwarden.store.database import default_url

__all__ = ["ServerSettings"]


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: str = "./aiwarden-data"
    database_url: str | None = None
    bucket_seconds: int = 60
    retention_days: float = 30.0  # raw events (and their id index); 0: forever
    # rollup partials (docs/server.md, Retention and downsampling): minute and 10-minute ones
    # kept this many days, hourly ones this many, daily ones forever; 0: forever
    minute_retention_days: float = 30.0
    hour_retention_days: float = 365.0
    cache_mb: float = 512.0  # decoded bucket partials kept between reads (alerts, charts)
    max_body_mb: float = 64.0
    max_columns: int = 5000  # widest reference accepted (AIWARDEN_MAX_COLUMNS); 0: no bound
    # rows and decoded size of one table body (ingest, labels, references), checked from its
    # metadata before decoding: 455 KB of Parquet can hold 50 M rows (AIWARDEN_MAX_ROWS,
    # AIWARDEN_MAX_DECODED_MB); 0: no bound
    max_rows: int = 1_000_000
    max_decoded_mb: float = 256.0
    compact_every: float = 5.0
    # segments (docs/server.md, Segments): values kept per segment column, then __other__
    segment_top_n: int = 10
    # multivariate drift (docs/drift.md): raw rows sampled a side per window, the cost knob
    multivariate_rows: int = 1000
    # a reference with more feature columns gets no multivariate fit (the metric says why;
    # the fit costs rows x columns x components); 0: no bound
    multivariate_max_columns: int = 1000
    # LLM prompts sent without an embedding are embedded by this local model2vec folder
    # (docs/llm.md, Text drift; the embeddings extra); empty: none
    embedding_model: str = ""
    # a YAML file of model-based LLM evaluators (an OpenAI-compatible moderation endpoint, a
    # local classifier) run on ingest beside the rule-based ones (docs/llm-evaluators.md,
    # "Model-based evaluators"); empty: none
    llm_evaluators: str = ""
    evaluate_every: float = 30.0  # alert rules; 0 turns the loop off
    # how long a dead leader keeps others from taking over; renewed every ttl/5 (at most
    # 2 s) by a heartbeat apart from cycles, so a long cycle never lets it lapse
    lease_ttl: float = 10.0
    notify_max_delay: float = 300.0  # longest wait between two delivery retries
    # an alert firing again this many seconds after its incident resolved reopens it
    # (docs/alerting.md, "Flapping"); 0: always a new incident
    incident_reopen_window: float = 300.0
    log_level: str = "info"
    # serving gateway (docs/gateway.md)
    gateway_poll: float = 0.25  # seconds between checks for alias or traffic-policy changes
    gateway_queue: int = 10_000  # prediction events waiting to be logged, at most
    gateway_resources_every: float = 15.0  # seconds between resource samples; 0: none
    # a model call past these is answered 504 (gateway/_watchdog.py): a canary, A/B arm or
    # shadow (then rolled back by a policy's compare:), and the served version; 0: unwatched
    gateway_trial_timeout: float = 10.0
    gateway_serve_timeout: float = 30.0
    price_cpu_core_hour: float = 0.0  # prices behind the cost per 1,000 predictions
    price_memory_gib_hour: float = 0.0
    price_gpu_hour: float = 0.0
    # ingest admission (docs/server.md, Backpressure): beyond these, 429 with Retry-After
    ingest_max_inflight: int = 8  # write requests running at once; 0 turns the bound off
    ingest_max_per_model: int = 4  # of one model (they serialise on its write lock anyway)
    ingest_max_queue: int = 64  # requests waiting for a slot, at most
    ingest_max_wait_ms: float = 250.0  # longest wait for a slot before the 429
    # image ingest (docs/image-events.md): decoded pixels, read from the headers, one
    # request may bring (more: 413) and all requests being measured may hold (more: a wait,
    # then 429); 0: no bound
    image_request_megapixels: float = 250.0
    image_inflight_megapixels: float = 500.0
    guardrail_max_upstream: int = 32  # guardrail chats waiting on upstreams at once; more: 429
    # browsers (docs/security.md): Host names and page origins this server answers to
    allowed_hosts: str = ""  # comma-separated; loopback names are always allowed on loopback
    allowed_origins: str = ""  # comma-separated origins that may change state, e.g. a proxy's
    allow_code_artifacts: bool = False  # pickle/joblib/entry points on a server without keys
    # training entries (package.module:function) a server without keys accepts in pipelines
    # anyway: code the operator installed and vouches for, e.g. the demo's own training
    trusted_entries: str = ""  # comma-separated
    # a training run whose server stopped beating this long ago is ended as failed (s)
    training_stale_after: float = 60.0
    # entry-point runs fork from a zygote holding these modules (docs/training.md, Executors);
    # false: a fresh interpreter per run. Empty preload: the default list
    training_warm: bool = True
    training_preload: str = ""
    # outbound calls (docs/alerting.md, Egress policy): loopback, private, link-local and
    # metadata addresses are refused unless listed here (CIDRs, host names, host:port)
    egress_allow: str = ""
    # receivers' {file: ...} secrets (docs/alerting.md): only files inside this folder are
    # read; empty: <data_dir>/secrets
    secrets_dir: str = ""
    # failed authentications (docs/security.md): per client address and per key id, at most
    # this many per window, then 429 with Retry-After; 0 turns the limit off. Per process.
    auth_failures: int = 10
    auth_failure_window: float = 60.0

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerSettings:
        values: dict[str, Any] = {}
        for f in fields(cls):
            env = os.environ.get(f"AIWARDEN_{f.name.upper()}")
            if env is not None and env != "":
                try:
                    values[f.name] = _in_range(f.name, _typed(f.type, env))
                except ValueError as exc:  # name the variable, not the field
                    raise ParameterError(f"AIWARDEN_{f.name.upper()}={env!r}: {exc}",
                                         f"AIWARDEN_{f.name.upper()}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def secrets_folder(self) -> Path:
        """Where receivers' ``{file: ...}`` secrets may be read from."""
        return Path(self.secrets_dir) if self.secrets_dir else Path(self.data_dir) / "secrets"

    @property
    def url(self) -> str:
        return self.database_url or default_url(Path(self.data_dir))

    @staticmethod
    def _listed(value: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in value.split(",") if v.strip())

    @property
    def entry_list(self) -> tuple[str, ...]:
        return self._listed(self.trusted_entries)

    @property
    def host_list(self) -> tuple[str, ...]:
        return self._listed(self.allowed_hosts)

    @property
    def origin_list(self) -> tuple[str, ...]:
        return self._listed(self.allowed_origins)

    @property
    def loopback(self) -> bool:
        if self.host in ("localhost", ""):
            return self.host == "localhost"
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def _in_range(name: str, value: Any) -> Any:
    """A number outside what its setting allows is refused here, naming the variable (a
    negative AIWARDEN_EVALUATE_EVERY silently turned the alert loop off, and a bad
    AIWARDEN_MULTIVARIATE_ROWS was reported later without its name). Bounds a module owns
    are imported from it, only when the variable is set."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    low, high = 0, math.inf
    if name == "port":
        high = 65535
    elif name == "multivariate_rows":
        from aiwarden.monitoring.multivariate_window import MAX_ROWS, MIN_ROWS
        low, high = MIN_ROWS, MAX_ROWS
    elif name == "segment_top_n":
        from aiwarden.monitoring.segments import MAX_TOP_N
        low, high = 1, MAX_TOP_N
    if not low <= value <= high:
        kind = "a whole number" if isinstance(value, int) else "a number"
        raise ValueError(f"expected {kind} >= 0" if (low, high) == (0, math.inf)
                         else f"expected {kind} in [{low}, {high}]")
    return value


def _typed(kind: Any, raw: str) -> Any:
    kind = str(kind)
    if kind == "bool":
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if "int" in kind and "float" not in kind:
        try:
            return int(raw)
        except ValueError:
            raise ValueError("expected a whole number") from None
    if "float" in kind:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value
    return raw
