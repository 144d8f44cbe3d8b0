"""A thin, synchronous client for the v1 REST API (docs/api.md).

Errors, drawn once::

    AiwardenError (aiwarden.errors)
    └── ApiError        the server answered non-2xx (status = HTTP code), or could not
                        be reached (status = 0, kind "connection_error" or "timeout";
                        the httpx exception is kept as ``__cause__``)

Input that cannot be turned into a request raises the engine's ``DataError`` /
``ParameterError`` before anything is sent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import numbers
import re
import time
from base64 import b64encode
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import orjson

from aiwarden.errors import DataError, ParameterError, check_param
from aiwarden.sdk import _payload as P
from aiwarden.sdk._errors import ApiError, overload_delay
from aiwarden.sdk.llm import LLMMixin
from aiwarden.sdk.logger import BackgroundLogger
from aiwarden.sdk.registry import RegistryMixin

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


__all__ = ["ApiError", "Client", "overload_delay"]

JSON_CHUNK_ROWS = 5_000
BULK_CHUNK_ROWS = 200_000
BULK_CHUNK_BYTES = 32 * 1024 * 1024  # half the server's default body limit
MAX_IMAGES = 1000  # the server's images per request
ARTIFACT_PREFIX = "artifacts://"
_IMAGE_FIELD = re.compile(r"(?:rows|files)\[(\d+)\]")  # a 413's field: rows[5].image, files[5]


_RELATIVE = re.compile(r"now|(?:now)?\s*-\s*\d+\s*[smhdw]")


def iso_time(value: Any, name: str = "time") -> str | None:
    """ISO 8601 UTC text for a datetime (naive = UTC), an ISO string, or epoch seconds;
    ``now`` and offsets like ``-1h`` / ``now-30m`` go as they are (the server's clock)."""
    if value is None:
        return None
    if isinstance(value, str) and _RELATIVE.fullmatch(value.strip().lower()):
        return value.strip()
    given = value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            with contextlib.suppress(ValueError):  # still text if not a number: refused below
                value = float(value)
    if hasattr(value, "dtype") and str(getattr(value, "dtype", "")).startswith("datetime64"):
        value = value.astype("datetime64[us]").item()  # numpy datetime64
    if isinstance(value, dt.datetime):
        t = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    elif isinstance(value, dt.date):
        t = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        t = dt.datetime.fromtimestamp(float(value), dt.UTC)
    else:
        check_param(False, name, "Client", "a datetime, an ISO 8601 string or epoch seconds",
                    given)
    t = t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond:06d}" if t.microsecond else "") \
        + "Z"


def _step(step: Any) -> str | None:
    if step is None or isinstance(step, str):
        return step
    if isinstance(step, dt.timedelta):
        step = step.total_seconds()
    check_param(isinstance(step, numbers.Real) and step > 0, "step", "Client.metrics",
                "a positive number of seconds, a timedelta or text such as '1h'", step)
    return str(int(step)) if float(step).is_integer() else str(step)


def _comma(value: str | Iterable[str] | None) -> str | None:
    return value if value is None or isinstance(value, str) else ",".join(map(str, value))


def _merge(total: dict[str, Any], part: Mapping[str, Any], offset: int) -> None:
    """Add one chunk's answer: counts summed, errors renumbered to the whole input's rows."""
    for key, value in part.items():
        if key == "errors" and isinstance(value, list):
            for err in value:
                if isinstance(err, dict) and isinstance(err.get("row"), int):
                    err = {**err, "row": err["row"] + offset}
                total.setdefault("errors", []).append(err)
        elif key == "ignored_columns" and isinstance(value, list):
            total[key] = sorted(set(total.get(key, [])) | set(value))  # any chunk's
        elif isinstance(value, int | float) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
        else:
            total.setdefault(key, value)


def _merge_images(total: dict[str, Any], part: Mapping[str, Any], offset: int) -> None:
    """:func:`_merge`, and quality findings' ``index``/``related`` renumbered likewise (both
    count within one request: the server checks each request's images on their own)."""
    total.setdefault("errors", [])  # present though empty, as in one request's answer
    _merge(total, {k: v for k, v in part.items() if k != "findings"}, offset)
    found = total.setdefault("findings", [])
    for f in part.get("findings") or []:
        if isinstance(f, dict):
            f = {**f, **{k: f[k] + offset for k in ("index", "related")
                         if isinstance(f.get(k), int) and not isinstance(f.get(k), bool)}}
        found.append(f)


def _split_at(exc: ApiError, n: int) -> int | None:
    """Where to split a refused image batch, or None to raise: a 413 ``too_many_pixels``
    names the first image beyond the request's budget (send it and the rest again); a body
    over the server's size limit is halved."""
    if exc.status != 413 or n < 2:
        return None
    if exc.kind == "too_many_pixels":
        found = _IMAGE_FIELD.match(exc.field or "")
        k = int(found.group(1)) if found else 0
        return k if 0 < k < n else None
    return n // 2 if exc.kind == "body_too_large" else None


def _image_body(images: Sequence[bytes | str], metas: Sequence[Mapping[str, Any]]
                ) -> tuple[bytes, str]:
    """One request's body: multipart when every image is bytes (no base64: a third smaller,
    nothing to encode), else JSON rows with ``image`` (base64) or ``image_uri``."""
    if any(isinstance(im, str) for im in images):
        rows = [{**m, "image_uri": im} if isinstance(im, str)
                else {**m, "image": b64encode(im).decode("ascii")}
                for im, m in zip(images, metas, strict=True)]
        return P.dumps({"rows": rows}), P.JSON
    request = httpx.Request("POST", "http://multipart.invalid/",
                            data={"metadata": P.dumps(list(metas)).decode()},
                            files=[("files", (f"{i}", im, "application/octet-stream"))
                                   for i, im in enumerate(images)])
    return request.read(), request.headers["Content-Type"]


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix or "value"] = value


class Client(RegistryMixin, LLMMixin):
    """Talk to an aiwarden server: register models, upload references, log, query.

    Parameters
    ----------
    url : str
        Server root, e.g. ``"http://127.0.0.1:8000"`` (``/api/v1`` is added unless present).
    api_key : str, optional
        Sent as ``Authorization: Bearer <key>``.
    timeout : float
        Seconds for connect/read/write of one request.
    overload_wait : float
        Seconds one call may spend waiting out ``429 Too Many Requests`` answers: each is
        retried after its ``Retry-After`` (with jitter) until this is used up, then raised
        as :class:`ApiError`. A 429 means the server stored nothing of the request, so the
        retry is always safe. 0 raises the first 429.

    Nothing else is retried here: a script can simply run again (ingest is idempotent by
    ``prediction_id``); a serving process should use :meth:`logger`, which retries.
    """

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 30.0,
                 overload_wait: float = 60.0) -> None:
        check_param(overload_wait >= 0, "overload_wait", "Client", "a number >= 0",
                    overload_wait)
        base = url.rstrip("/")
        self.base_url = base if base.endswith("/api/v1") else base + "/api/v1"
        self.timeout, self.overload_wait = timeout, overload_wait
        self.throttled = 0  # 429 answers waited out so far
        self._headers = {"Accept": "application/json", "User-Agent": "aiwarden-python"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._http = self._new_http()

    def _new_http(self) -> httpx.Client:
        """A fresh connection pool with this client's settings (the logger owns its own)."""
        return httpx.Client(base_url=self.base_url, headers=self._headers, timeout=self.timeout)

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    @staticmethod
    def _path(name: str, *rest: str) -> str:
        return "/models/" + "/".join(quote(str(p), safe="") for p in (name, *rest))

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                 json: Any = None, content: bytes | None = None,
                 content_type: str | None = None) -> httpx.Response:
        headers = {}
        if json is not None:
            content, content_type = P.dumps(json), P.JSON
        if content_type:
            headers["Content-Type"] = content_type
        query = {k: v for k, v in (params or {}).items() if v is not None}
        deadline = time.monotonic() + self.overload_wait
        while True:
            try:
                response = self._http.request(method, path, params=query, content=content,
                                              headers=headers)
            except httpx.TimeoutException as exc:
                raise ApiError(0, "timeout", f"{method} {path}: {exc}") from exc
            except httpx.TransportError as exc:
                raise ApiError(0, "connection_error", f"{method} {path}: {exc}") from exc
            if response.is_success:
                return response
            left = deadline - time.monotonic()
            if response.status_code != 429 or left <= 0:
                raise ApiError.from_response(response)
            self.throttled += 1
            time.sleep(overload_delay(response, left))

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = self._request(method, path, **kw)
        return orjson.loads(response.content) if response.content else None

    # -- alerting -------------------------------------------------------------------------------

    def put_rule(self, model: str, name: str, rule: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace one alert rule (see docs/alerting.md for the fields)."""
        path = "/rules/" + "/".join(quote(str(p), safe="") for p in (model, name))
        return self._json("PUT", path, json=dict(rule))

    def list_rules(self, model: str | None = None) -> list[dict[str, Any]]:
        return self._json("GET", "/rules", params={"model": model})

    def apply_rules(self, text: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Apply a rule file's text (YAML or JSON): validated, diffed, idempotent."""
        return self._json("POST", "/rules/apply", params={"dry_run": str(dry_run).lower()},
                          content=text.encode(), content_type="application/yaml")

    def alerts(self, model: str) -> list[dict[str, Any]]:
        return self._json("GET", self._path(model, "alerts"))

    def incidents(self, model: str | None = None,
                  status: str | None = None) -> list[dict[str, Any]]:
        return self._json("GET", "/incidents", params={"model": model, "status": status})

    def rca(self, model: str, start: Any = None, end: Any = None) -> dict[str, Any]:
        """Root-cause analysis of a window (default: the last hour) as a dict."""
        return self._json("GET", self._path(model, "rca"), params={
            "start": iso_time(start, "start"), "end": iso_time(end, "end")})

    # -- models, versions, references ----------------------------------------------------------

    def create_model(self, name: str, task: str | None = None,
                     description: str | None = None,
                     segments: str | Iterable[str] | None = None) -> dict[str, Any]:
        """``segments``: the model's segment columns (docs/server.md, Segments)."""
        body = {"name": name, "task": task, "description": description,
                "segments": None if segments is None else
                [segments] if isinstance(segments, str) else list(segments)}
        return self._json("POST", "/models", json={k: v for k, v in body.items() if v is not None})

    def list_models(self) -> list[dict[str, Any]]:
        return self._json("GET", "/models")

    def get_model(self, name: str) -> dict[str, Any]:
        return self._json("GET", self._path(name))

    def create_version(self, name: str, version: str, schema: Any = None) -> dict[str, Any]:
        """``schema`` is an engine ``Schema`` or its ``to_dict()``."""
        body: dict[str, Any] = {"version": version}
        if schema is not None:
            body["schema"] = schema.to_dict() if hasattr(schema, "to_dict") else dict(schema)
        return self._json("POST", self._path(name, "versions"), json=body)

    def get_version(self, name: str, version: str) -> dict[str, Any]:
        return self._json("GET", self._path(name, "versions", version))

    def upload_reference(self, name: str, version: str, data: Any, *, target: str | None = None,
                         prediction: str | None = None, scores: str | Iterable[str] | None = None,
                         id: str | None = None, timestamp: str | None = None,
                         segments: str | Iterable[str] | None = None,
                         task: str | None = None) -> dict[str, Any]:
        """Send a reference (tabular data as Parquet, or a file as it is); creates the version.

        A path to a ``.parquet``/``.csv``/``.json``/``.arrow`` file is sent with its own
        content type, so the server parses it once, in its own way.
        """
        if isinstance(data, str | Path):
            body, kind = P.file_body(data)
        else:
            body, kind = P.to_parquet(P.to_arrow(data)), P.PARQUET
        params = {"target": target, "prediction": prediction, "scores": _comma(scores),
                  "id": id, "timestamp": timestamp, "segments": _comma(segments), "task": task}
        return self._json("PUT", self._path(name, "versions", version, "reference"),
                          params=params, content=body, content_type=kind)

    def get_reference(self, name: str, version: str) -> dict[str, Any]:
        """The version's reference as ``Reference.to_dict()``: load it with
        ``Reference.from_dict`` and profile large data on its bins elsewhere."""
        return self._json("GET", self._path(name, "versions", version, "reference"))

    def upload_reference_profile(self, name: str, version: str, reference: Any
                                 ) -> dict[str, Any]:
        """Send a reference fitted elsewhere (an engine ``Reference`` or its ``to_dict()``);
        the server checks it against its own bins before storing it."""
        body = reference.to_dict() if hasattr(reference, "to_dict") else reference
        return self._json("PUT", self._path(name, "versions", version, "reference-profile"),
                          json=body)

    def log_profile(self, name: str, version: str, profile: Any, *, batch: str,
                    at: Any) -> dict[str, Any]:
        """Send a batch profile counted on the version's reference (an engine ``Profile`` or
        its ``to_dict()``), counted in the windows holding ``at``; ``batch`` names it once."""
        body = profile.to_dict() if hasattr(profile, "to_dict") else profile
        when = at.isoformat() if hasattr(at, "isoformat") else at
        return self._json("POST", self._path(name, "versions", version, "profiles"),
                          json={"batch": batch, "at": when, "profile": body})

    # -- ingest --------------------------------------------------------------------------------

    def log_predictions(self, name: str, data: Any, *, version: str | None = None,
                        progress: Callable[[int, int], Any] | None = None) -> dict[str, Any]:
        """Log predictions; answers the server's counts summed over chunks.

        Row dicts (``{"prediction_id", "features", "prediction", ...}``) go as JSON in
        chunks of 5,000; a DataFrame/Table with flat columns goes as Arrow IPC in chunks
        of at most 200,000 rows / ~32 MB. ``errors[*].row`` counts from the start of
        ``data``. If a chunk fails, earlier chunks are stored: calling again with the
        same data is safe, the server counts repeats as ``duplicates``. ``progress(sent,
        total)`` is called after each chunk (rows).
        """
        return self._ingest(self._path(name, "predictions"), data, version, progress)

    def log_labels(self, name: str, data: Any, *,
                   progress: Callable[[int, int], Any] | None = None) -> dict[str, Any]:
        """Log ground truth: rows or columns of ``prediction_id`` and ``label``."""
        return self._ingest(self._path(name, "labels"), data, None, progress)

    def log_resources(self, name: str, samples: list[Mapping[str, Any]]) -> dict[str, Any]:
        """Resource samples (``cpu_percent``, ``rss_bytes``, ``gpu_*``, ``cost``...), e.g.
        from :class:`aiwarden.process_usage.ProcessSampler`; bad samples come back in
        ``errors`` with the field and the reason."""
        return self._json("POST", self._path(name, "resources"), json=list(samples))

    def _ingest(self, path: str, data: Any, version: str | None,
                progress: Callable[[int, int], Any] | None = None) -> dict[str, Any]:
        said = progress or (lambda _done, _total: None)
        if isinstance(data, str | Path):
            data = P.load_file(data)
        if isinstance(data, Mapping) and not P.is_columns(data):
            data = [data]  # one row
        total: dict[str, Any] = {}
        if P.is_rows(data):
            rows = list(data)
            if version is not None:
                rows = [r if "version" in r else {**r, "version": version} for r in rows]
            for start in range(0, len(rows), JSON_CHUNK_ROWS):
                part = self._json("POST", path, json=rows[start:start + JSON_CHUNK_ROWS])
                _merge(total, part or {}, start)
                said(min(start + JSON_CHUNK_ROWS, len(rows)), len(rows))
            return total
        table = P.to_arrow(data)
        if version is not None:
            table = _with_version(table, version)
        for start, chunk in P.table_chunks(table, BULK_CHUNK_ROWS, BULK_CHUNK_BYTES):
            part = self._json("POST", path, content=P.to_ipc(chunk), content_type=P.ARROW_STREAM)
            _merge(total, part or {}, start)
            said(start + chunk.num_rows, table.num_rows)
        return total

    def log_images(self, name: str, images: Sequence[bytes | bytearray | str | Path],
                   rows: Sequence[Mapping[str, Any]] | None = None, *,
                   version: str | None = None, batch_size: int = 64,
                   progress: Callable[[int, int], Any] | None = None) -> dict[str, Any]:
        """Log image events (docs/image-events.md); answers the server's counts summed over
        requests, with ``errors[*].row`` and ``findings[*].index`` counting from the start of
        ``images``, so a caller never has to map a request's numbering back to its list.

        ``images[i]``: encoded bytes, a local file (``Path`` or ``str``, read here), or an
        ``artifacts://...`` URI the server reads from its artifact store. ``rows[i]``: its
        event (prediction_id, prediction, scores, timestamp, features, tags, embedding);
        ``version`` fills rows without one. A row without ``prediction_id`` gets the SHA-256
        of its image (or URI), so sending the same list again is counted as ``duplicates``,
        not stored twice. Every file is checked before anything is sent.

        Requests of at most ``batch_size`` images and ~32 MB go as multipart (no base64), or
        as JSON rows when they hold a URI. A request the server refuses for its decoded
        pixels (413 ``too_many_pixels`` naming the first image beyond the budget) is sent
        again in two parts, so a caller need not know the server's budget; 429 is waited
        out as elsewhere. If a request fails, the earlier ones are stored: calling again is
        safe. ``progress(sent, total)`` is called after each request (images).
        """
        check_param(isinstance(batch_size, int) and 1 <= batch_size <= MAX_IMAGES,
                    "batch_size", "Client.log_images", f"an int in [1, {MAX_IMAGES}]",
                    batch_size)
        items = list(images)
        if rows is not None and len(rows) != len(items):
            raise ParameterError(f"Client.log_images needs one row per image: got "
                                 f"{len(items)} images and {len(rows)} rows.")
        metas = [dict(r) for r in rows] if rows is not None else [{} for _ in items]
        sizes = []
        for i, (item, meta) in enumerate(zip(items, metas, strict=True)):
            if "image" in meta or "image_uri" in meta:
                raise ParameterError(f"rows[{i}] holds an image: pass it in 'images' instead.")
            if version is not None and meta.get("version") is None:
                meta["version"] = version
            if isinstance(item, str) and item.startswith(ARTIFACT_PREFIX):
                sizes.append(len(item))
            elif isinstance(item, bytes | bytearray):
                sizes.append(len(item) * 4 // 3)  # as base64, should the request be JSON
            elif isinstance(item, str | Path):
                if not Path(item).is_file():
                    raise DataError(f"images[{i}]: no file at {str(item)!r}; nothing was "
                                    f"sent.", f"images[{i}]")
                sizes.append(Path(item).stat().st_size * 4 // 3)
            else:
                raise ParameterError(f"images[{i}] must be bytes, a file path or an "
                                     f"'{ARTIFACT_PREFIX}...' URI. Got "
                                     f"{type(item).__name__} instead.")
        total: dict[str, Any] = {}
        path = self._path(name, "images")

        def post(start: int, data: list[bytes | str], part: list[dict[str, Any]]) -> None:
            body, kind = _image_body(data, part)
            try:
                answer = self._json("POST", path, content=body, content_type=kind)
            except ApiError as exc:
                k = _split_at(exc, len(data))
                if k is None:
                    raise
                post(start, data[:k], part[:k])
                post(start + k, data[k:], part[k:])
                return
            _merge_images(total, answer or {}, start)
            if progress is not None:
                progress(start + len(data), len(items))

        start = 0
        while start < len(items):
            end, size = start + 1, sizes[start]
            while end < len(items) and end - start < batch_size \
                    and size + sizes[end] <= BULK_CHUNK_BYTES:
                size += sizes[end]
                end += 1
            data = [_image_data(i, items[i]) for i in range(start, end)]
            part = metas[start:end]
            for im, meta in zip(data, part, strict=True):
                if meta.get("prediction_id") is None:
                    raw = im.encode() if isinstance(im, str) else im
                    meta["prediction_id"] = hashlib.sha256(raw).hexdigest()[:32]
            post(start, data, part)
            start = end
        return total

    def logger(self, name: str, **kwargs: Any) -> BackgroundLogger:
        """A :class:`BackgroundLogger` for ``name`` (see there for the keyword arguments)."""
        return BackgroundLogger(self, name, **kwargs)

    # -- queries -------------------------------------------------------------------------------

    def metrics(self, name: str, metric: str, start: Any = None, end: Any = None,
                step: Any = None, version: str | None = None,
                segment: str | Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One metric over time; ``step`` is seconds, a timedelta, or ``"1h"``-style text.

        ``segment``: one segment's rows only, ``"country:BR"`` or ``{"country": "BR"}``
        (docs/server.md, Segments).
        """
        if isinstance(segment, Mapping):
            if len(segment) != 1:
                raise ValueError("The 'segment' parameter of Client.metrics must name one "
                                 f"column, e.g. {{'country': 'BR'}}. Got {dict(segment)!r} "
                                 "instead.")
            ((column, value),) = segment.items()
            segment = f"{column}:{value}"
        params = {"metric": metric, "start": iso_time(start, "start"),
                  "end": iso_time(end, "end"), "step": _step(step), "version": version,
                  "segment": segment}
        return self._json("GET", self._path(name, "metrics"), params=params)

    def metrics_frame(self, name: str, metric: str, start: Any = None, end: Any = None,
                      step: Any = None, version: str | None = None,
                      segment: str | Mapping[str, Any] | None = None) -> pd.DataFrame:
        """:meth:`metrics` as one row per point; nested values become dotted columns.

        ``{"amount": {"psi": 0.1}}`` gives a column ``amount.psi``; a plain number
        gives ``value``. ``start``/``end`` are UTC timestamps.
        """
        import pandas as pd

        answer = self.metrics(name, metric, start, end, step, version, segment)
        records = []
        for point in answer.get("points", []):
            rec = {"start": point.get("start"), "end": point.get("end"),
                   "rows": point.get("rows")}
            _flatten(point.get("value"), "", rec)
            records.append(rec)
        frame = pd.DataFrame.from_records(records, columns=None if records else
                                          ["start", "end", "rows"])
        for col in ("start", "end"):
            frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
        return frame

    def compare(self, name: str, start: Any, end: Any, baseline_start: Any = None,
                baseline_end: Any = None) -> dict[str, Any]:
        """Drift and quality of a window against a baseline window (default: the reference)."""
        params = {"start": iso_time(start, "start"), "end": iso_time(end, "end"),
                  "baseline_start": iso_time(baseline_start, "baseline_start"),
                  "baseline_end": iso_time(baseline_end, "baseline_end")}
        return self._json("GET", self._path(name, "compare"), params=params)

    def confusion(self, name: str, window: Any = None, *, start: Any = None, end: Any = None,
                  step: Any = None, version: str | None = None, segment: str | None = None,
                  top: int | None = None) -> dict[str, Any]:
        """A classifier's confusion matrix over time from its joined labels: per ``step``
        and for the whole range, with per-class recall/precision and the ``top`` most
        confused pairs (docs/confusion.md). ``window`` (``"1d"``, seconds or a timedelta)
        is the range ending at ``end`` (default now); else ``start``..``end``."""
        params = {"window": _step(window), "start": iso_time(start, "start"),
                  "end": iso_time(end, "end"), "step": _step(step), "version": version,
                  "segment": segment, "top": top}
        return self._json("GET", self._path(name, "confusion"), params=params)

    def export_events(self, name: str, start: Any, end: Any) -> pa.Table:
        """Raw events of a window (joined labels included), read from the server's Parquet."""
        params = {"start": iso_time(start, "start"), "end": iso_time(end, "end")}
        return P.read_parquet(self._request("GET", self._path(name, "events"),
                                            params=params).content)

    def quarantine(self, name: str) -> Any:
        """Rows the server kept aside, each with its reason."""
        return self._json("GET", self._path(name, "quarantine"))

    # -- explanations (docs/explain.md) -------------------------------------------------------

    def explain(self, name: str, prediction_ids: Sequence[str] | None = None, *,
                rows: Any = None, version: str | None = None,
                **options: Any) -> dict[str, Any]:
        """Why each logged prediction (by id) or each row sent now got its output: base
        value, each feature's contribution and value, output, additivity residual.
        ``options``: method ('auto', 'tree', 'linear', 'permutation', 'kernel', 'lime'),
        seed, background_size ... (docs/explain.md)."""
        body: dict[str, Any] = {"version": version, "options": options or None}
        if prediction_ids is not None:
            body["prediction_ids"] = [str(p) for p in prediction_ids]
        if rows is not None:
            body["rows"] = _row_dicts(rows)
        return self._json("POST", self._path(name, "explain"),
                          json={k: v for k, v in body.items() if v is not None})

    def importance(self, name: str, start: Any = None, end: Any = None, *,
                   version: str | None = None, sample_size: int | None = None,
                   where: Sequence[str] | str | None = None, method: str = "auto",
                   seed: int = 0) -> dict[str, Any]:
        """Which features drive a window (mean |SHAP| with bootstrap intervals), against the
        reference's ranking (attribution drift), and inside a slice such as 'amount<10'."""
        return self._json("GET", self._path(name, "importance"), params={
            "start": iso_time(start, "start"), "end": iso_time(end, "end"),
            "version": version, "sample_size": sample_size, "method": method, "seed": seed,
            "where": [where] if isinstance(where, str) else list(where or []) or None})


def _image_data(i: int, item: bytes | bytearray | str | Path) -> bytes | str:
    """``images[i]`` as sent: bytes as they are, a URI as text, a file's bytes."""
    if isinstance(item, bytes | bytearray):
        return bytes(item)
    if isinstance(item, str) and item.startswith(ARTIFACT_PREFIX):
        return item
    try:
        return Path(item).read_bytes()
    except OSError as exc:  # gone since the check: earlier requests are stored
        raise DataError(f"images[{i}]: cannot read {str(item)!r}: {exc.strerror}.",
                        f"images[{i}]") from exc


def _row_dicts(rows: Any) -> list[dict[str, Any]]:
    """Rows to explain as JSON objects: a DataFrame, an Arrow table, row dicts or one row."""
    if isinstance(rows, Mapping):
        return [dict(rows)]
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # pandas
        return list(rows.to_dict("records"))
    if hasattr(rows, "to_pylist"):  # pyarrow
        return list(rows.to_pylist())
    if hasattr(rows, "to_dicts"):  # polars
        return list(rows.to_dicts())
    return [dict(r) for r in rows]


def _with_version(table: pa.Table, version: str) -> pa.Table:
    """Fill the ``version`` column (added if absent) where rows do not name their own."""
    import pyarrow as pa

    if "version" not in table.column_names:
        return table.append_column("version", pa.repeat(pa.scalar(version), table.num_rows))
    i = table.column_names.index("version")
    return table.set_column(i, "version", table.column(i).fill_null(version))
