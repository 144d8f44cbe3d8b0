"""Image events over REST (docs/images.md): ingest, thumbnails, the gallery's list.

POST /models/{m}/images takes multipart (``files`` parts plus a ``metadata`` JSON part: one
object per file, in order) or JSON rows each with a base64 ``image`` or an ``image_uri`` in the
artifact store (aiwarden.monitoring.image_uris). Decoding runs in a
worker process, before the tabular ingest's write lock (aiwarden.monitoring.image_events);
when every measuring slot stays taken, 429 with Retry-After, like other ingest. Requests are
admitted by their decoded pixels, read from the headers first (aiwarden/images/_budget.py):
beyond one request's budget 413, beyond what the server holds in flight 429. A server
without Pillow answers 501 naming the extra: not the client's fault.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from aiwarden.errors import DataError
from aiwarden.images import DecodeFailure, MissingExtraError, decode_base64
from aiwarden.images._budget import PixelBudget, PixelsBusy, TooManyPixels
from aiwarden.images._decode import decoded_pixels
from aiwarden.images._deps import pil
from aiwarden.images._pool import PoolBusy
from aiwarden.monitoring import quarantine as quarantine_rows
from aiwarden.monitoring.image_embeddings import check_embedding, store_reference
from aiwarden.monitoring.image_events import FIELD, ThumbnailStore, ingest_images
from aiwarden.monitoring.image_uris import StoredImage, parse_image_uri, read_stored
from aiwarden.server.access import monitor as _monitor
from aiwarden.server.access import requires
from aiwarden.server.api_models import Open, answers, body_doc
from aiwarden.server.errors import HttpError, Malformed
from aiwarden.server.jsonbody import json_rows, loads
from aiwarden.server.registry_routes import registry_for
from aiwarden.store import models_repo as repo

__all__ = ["MAX_IMAGES", "MAX_IMAGE_BYTES", "router"]

router = APIRouter()

MAX_IMAGES = 1000  # per request
MAX_IMAGE_BYTES = 20_000_000  # per image; larger is quarantined as too_large_file
_MULTIPART = "multipart/form-data"
_IMAGE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=60",
                  "Content-Security-Policy": "default-src 'none'"}


_BODY_DOC = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["files", "metadata"], "properties": {
            "files": {"type": "array", "minItems": 1,
                      "items": {"type": "string", "format": "binary"}},
            "metadata": {"type": "string", "pattern": r"^\s*\[",
                         "description": "a JSON list, one object per file "
                         "in order: prediction_id, prediction, scores, timestamp, features"}}}},
    "application/json": {"schema": {"type": "object", "required": ["rows"], "properties": {
        "rows": {"type": "array", "items": {"type": "object", "properties": {
            "image": {"type": "string", "description": "the encoded image, base64"},
            "image_uri": {"type": "string", "pattern": "^artifacts://images/[^/]",
                          "description": "instead of image: the image's key in the server's "
                          "artifact store, under images/"}},
            "oneOf": [{"required": ["image"], "not": {"required": ["image_uri"]}},
                      {"required": ["image_uri"], "not": {"required": ["image"]}}]}}}}},
}}}


class ImagesIngested(Open):
    images: int
    images_quarantined: int = Field(description="images whose row went to quarantine "
                                    "(field 'image', reason '<code>: <message>')")
    thumbnails: int
    embeddings: int | None = Field(None, description="embeddings kept for embedding drift "
                                   "(accepted rows'; present when the request sent any)")
    findings: list[dict[str, Any]] = Field(description="aiwarden.images quality findings "
                                           "(index, reason, message): at most 100")
    received: int
    accepted: int
    duplicates: int
    quarantined: int
    labels_joined: int
    errors: list[dict[str, Any]]
    ignored_columns: list[str] = Field(default_factory=list, description=(
        "columns sent (image properties included) that the version's schema does not read"))
    schema_from: dict[str, str] = Field(default_factory=dict)


class QuarantinedImage(Open):
    prediction_id: str | None
    reason: str = Field(description="'<code>: <message>', code from aiwarden.images.REASONS")
    received_at: float
    thumbnail: bool = Field(description="a thumbnail is kept (GET .../thumbnail)")


class QuarantinedImages(Open):
    model: str
    images: list[QuarantinedImage]


def thumbnails(request: Request) -> ThumbnailStore:
    """The server's thumbnail store, under ``<data_dir>/thumbnails`` (made on first use)."""
    store = getattr(request.app.state, "thumbnails", None)
    if store is None:
        store = ThumbnailStore(Path(request.app.state.settings.data_dir) / "thumbnails")
        request.app.state.thumbnails = store
    return store


def _meta(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise Malformed(f"{where}: expected a JSON object with prediction_id, prediction, "
                        f"scores, timestamp, features.", where)
    if doc.get("embedding") is not None:
        try:
            check_embedding(doc["embedding"], f"{where}.embedding")
        except DataError as exc:
            raise Malformed(str(exc), f"{where}.embedding") from None
    return doc


def _same_length(metas: list[dict[str, Any]], where: str) -> None:
    """One request's embeddings have one length (a window compares like with like)."""
    first: tuple[int, int] | None = None
    for i, meta in enumerate(metas):
        emb = meta.get("embedding")
        if emb is None:
            continue
        if first is None:
            first = (i, len(emb))
        elif len(emb) != first[1]:
            raise Malformed(f"{where}[{i}].embedding: {len(emb)} dimensions, but "
                            f"{where}[{first[0]}].embedding has {first[1]}.",
                            f"{where}[{i}].embedding")


async def _multipart(request: Request) -> tuple[list[dict[str, Any]], list[Any]]:
    form = await request.form(max_files=MAX_IMAGES, max_fields=16)
    try:
        files = [f for f in form.getlist("files") if not isinstance(f, str)]
        if not files:
            raise Malformed("A multipart upload needs one or more file parts named 'files'.",
                            "files")
        text = form.get("metadata")
        if not isinstance(text, str) or not text.strip():
            raise Malformed("A multipart upload needs a 'metadata' part: a JSON list with "
                            "one object per file, in order.", "metadata")
        doc = loads(text, "metadata")
        if isinstance(doc, dict):
            doc = [doc]
        if not isinstance(doc, list) or len(doc) != len(files):
            raise Malformed(f"metadata: expected a JSON list of {len(files)} objects (one "
                            f"per file). Got {len(doc) if isinstance(doc, list) else 'no list'}"
                            f" instead.", "metadata")
        metas = [_meta(d, f"metadata[{i}]") for i, d in enumerate(doc)]
        for i, meta in enumerate(metas):
            if "image_uri" in meta or "image" in meta:
                raise Malformed(f"metadata[{i}]: a multipart upload sends the image as its "
                                "file part; image and image_uri belong to JSON rows.",
                                f"metadata[{i}]")
        images: list[Any] = []
        for f in files:
            data = await f.read(MAX_IMAGE_BYTES + 1)  # never more than the limit in memory
            images.append(data if len(data) <= MAX_IMAGE_BYTES else DecodeFailure(
                "too_large_file", f"The file has more than {MAX_IMAGE_BYTES} bytes."))
        return metas, images
    finally:
        await form.close()


async def _json(request: Request) -> tuple[list[dict[str, Any]], list[Any]]:
    doc = await json_rows(request, "an image event")
    if not doc:
        raise Malformed("Expected an image event object, a list of them, or "
                        "{\"rows\": [...]}.", "rows")
    metas, images = [], []
    for i, row in enumerate(doc):
        meta = dict(_meta(row, f"rows[{i}]"))
        named = "image_uri" in meta  # a null there is a malformed row, not an absent field
        text, uri = meta.pop("image", None), meta.pop("image_uri", None)
        if named:
            if "image" in row:
                raise Malformed(f"rows[{i}]: send either image (base64) or image_uri, not "
                                "both.", f"rows[{i}].image_uri")
            try:
                images.append(parse_image_uri(uri, f"rows[{i}].image_uri"))
            except DataError as exc:
                raise Malformed(str(exc), exc.column) from None
            metas.append(meta)
            continue
        if not isinstance(text, str):  # the document says text: a request error, as missing
            got = "missing" if text is None else f"got {type(text).__name__}"
            raise Malformed(f"rows[{i}].image: {got}; send the image as base64 text, or "
                            "name it in the artifact store with image_uri.",
                            f"rows[{i}].image")
        metas.append(meta)
        images.append(decode_base64(text))
    return metas, images


@router.post("/models/{name}/images", dependencies=[requires("ingest")], tags=["images"],
             responses=answers(ImagesIngested, 501, 503), openapi_extra=_BODY_DOC)
async def log_images(request: Request, name: str) -> dict[str, Any]:
    """Image events: properties logged as the version's numeric features; images that do
    not decode, or fail a quality check, quarantined with the reason (docs/images.md)."""
    try:  # first, whatever else is wrong (as explain does): nothing here works without it
        pil()
    except MissingExtraError as exc:
        raise ExtraMissing(str(exc), None) from None
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    metas, images = await (_multipart(request) if media == _MULTIPART else _json(request))
    where = "metadata" if media == _MULTIPART else "rows"
    _same_length(metas, where)
    if len(images) > MAX_IMAGES:
        raise Malformed(f"At most {MAX_IMAGES} images per request. Got {len(images)}.", "rows")
    budget = pixel_budget(request)
    names = "files" if media == _MULTIPART else "rows"

    stored = any(isinstance(im, StoredImage) for im in images)
    store = registry_for(request.app).store if stored else None

    def admit_and_ingest() -> Any:
        if store is not None:
            images[:] = read_stored(store, images, MAX_IMAGE_BYTES, _monitor(request).db)
        pixels = [decoded_pixels(im, max_bytes=MAX_IMAGE_BYTES) for im in images]
        for i, p in enumerate(pixels):
            if budget.per_request and p > budget.per_request:
                # alone beyond one request's budget: no split admits it, so quarantined
                images[i], pixels[i] = DecodeFailure("too_many_pixels", f"{p} decoded pixels, "
                                                     f"more than a request's budget."), 0
        with budget.hold(pixels, names):
            return ingest_images(_monitor(request), name, metas, images, thumbnails(request),
                                 where=where, max_bytes=MAX_IMAGE_BYTES)

    try:
        res = await run_in_threadpool(admit_and_ingest)
    except TooManyPixels as exc:
        raise ImagePixels(str(exc), _image_field(names, exc.index)) from None
    except PixelsBusy as exc:
        raise ImagesBusy(str(exc), exc.retry_after, _image_field(names, exc.index)) from None
    except PoolBusy as exc:
        raise ImagesBusy(str(exc), exc.retry_after) from None
    return res.to_dict()


def _image_field(names: str, index: int) -> str:
    return f"rows[{index}].image" if names == "rows" else f"files[{index}]"


_BUDGETS_LOCK = threading.Lock()


def pixel_budget(request: Request) -> PixelBudget:
    """The server's decoded-pixel budget (settings image_request_megapixels and
    image_inflight_megapixels), made on first use."""
    with _BUDGETS_LOCK:
        budget = getattr(request.app.state, "image_pixels", None)
        if budget is None:
            settings = request.app.state.settings
            budget = PixelBudget(int(settings.image_request_megapixels * 1e6),
                                 int(settings.image_inflight_megapixels * 1e6),
                                 max_wait=settings.ingest_max_wait_ms / 1000)
            request.app.state.image_pixels = budget
        return budget


class ImagePixels(HttpError):
    """The request's images decode to more pixels than one request may bring."""

    status, kind = 413, "too_many_pixels"


class ExtraMissing(HttpError):
    """The server lacks the images extra: not the client's fault, so not a 4xx."""

    status, kind = 501, "missing_extra"


class ImagesBusy(HttpError):
    """The image measuring workers are saturated: nothing was stored, retry later."""

    status, kind = 429, "overloaded"

    def __init__(self, message: str, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field)
        self.headers = {"Retry-After": str(retry_after)}


# {prediction_id:path}: an id may hold "/", the thumbnail file is named by its hash
@router.get("/models/{name}/images/{prediction_id:path}/thumbnail",
            dependencies=[requires("read")], tags=["images"],
            responses=answers(None, 404, media="image/jpeg"), response_class=Response)
def get_thumbnail(request: Request, name: str, prediction_id: str) -> Response:
    """The image's small JPEG, kept at ingest (bounded per model, oldest dropped)."""
    m = _monitor(request).model(name)
    data = thumbnails(request).read(m.id, prediction_id)
    if data is None:
        return Response(b'{"detail": {"error": "not_found", "message": "No thumbnail kept '
                        b'for this prediction id (not an image event, not decodable, or '
                        b'dropped by retention).", "field": "prediction_id"}}', 404,
                        media_type="application/json")
    return Response(data, media_type="image/jpeg", headers=_IMAGE_HEADERS)


@router.get("/models/{name}/images/quarantined", dependencies=[requires("read")],
            tags=["images"], responses=answers(QuarantinedImages))
def list_quarantined_images(request: Request, name: str, limit: int = 100) -> dict[str, Any]:
    """Quarantined image events, newest first, each with its reason."""
    limit = max(1, min(int(limit), 500))
    monitor = _monitor(request)
    with monitor.db.read() as conn:
        m = repo.get_model(conn, name)
        found = quarantine_rows.list_rows(conn, m.id, field=FIELD, limit=limit)
    store = thumbnails(request)
    return {"model": name, "images": [
        {"prediction_id": q.prediction_id, "reason": q.reason, "received_at": q.received_at,
         "thumbnail": q.prediction_id is not None
         and store.path(m.id, q.prediction_id).is_file()} for q in found]}


class EmbeddingVectors(Open):
    embeddings: list[Annotated[list[float], Field(min_length=1, max_length=4096)]] = Field(
        min_length=20, description=(
        "at least 20 vectors, all of one length (1 to 4,096 finite numbers); a bare list "
        "of vectors is accepted too"))


class EmbeddingReference(Open):
    model: str
    version: str
    embeddings: int = Field(description="vectors kept (a seeded sample of at most 500)")
    received: int
    dimensions: int


@router.put("/models/{name}/versions/{version}/embedding-reference",
            dependencies=[requires("admin")], tags=["images"],
            responses=answers(EmbeddingReference, 404),
            openapi_extra=body_doc(json=EmbeddingVectors))
async def put_embedding_reference(request: Request, name: str, version: str
                                  ) -> dict[str, Any]:
    """The version's reference embeddings (``{"embeddings": [[...], ...]}`` or a bare list),
    what the ``embedding_drift`` metric compares each window's event embeddings with."""
    doc = loads(await request.body(), "body")
    vectors = doc.get("embeddings") if isinstance(doc, dict) else doc
    if not isinstance(vectors, list) or not vectors:
        raise Malformed("Expected {\"embeddings\": [[...], ...]}: a list of vectors.",
                        "embeddings")
    for i, v in enumerate(vectors):
        try:
            check_embedding(v, f"embeddings[{i}]")
        except DataError as exc:
            raise Malformed(str(exc), f"embeddings[{i}]") from None
        if len(v) != len(vectors[0]):
            raise Malformed(f"embeddings[{i}]: {len(v)} dimensions, but embeddings[0] has "
                            f"{len(vectors[0])}.", f"embeddings[{i}]")

    def put() -> dict[str, Any]:
        monitor = _monitor(request)
        with monitor.db.write() as conn:
            v = repo.get_version(conn, repo.get_model(conn, name), version)
            try:
                kept = store_reference(conn, v.id, vectors)
            except DataError as exc:
                raise Malformed(str(exc), "embeddings") from None
        return {"model": name, "version": v.version, **kept}

    return await run_in_threadpool(put)
