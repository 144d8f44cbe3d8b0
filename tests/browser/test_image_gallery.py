"""The image gallery in a real browser (SQLite): quarantined images with their reasons and
thumbnails loaded from the server, misclassified ones once labels say so, names escaped."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from aiwarden.images import properties
from aiwarden.images.synthetic import fruit_jpeg, to_jpeg
from tests.server.conftest import register_model
from tests.server.live import ThreadServer, settings_for

EVIL = "<b id=pwn>x</b>"


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServer, str]]:
    tmp = tmp_path_factory.mktemp("gallery")
    settings = settings_for(f"sqlite:///{tmp / 'g.db'}", tmp, evaluate_every=0.0)
    rng = np.random.default_rng(3)
    with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url + "/api/v1",
                                                     timeout=60) as http:
        name = f"gallery-{uuid.uuid4().hex[:6]}"
        kinds = ["banana", "cucumber"] * 10
        ref = properties([fruit_jpeg(k, rng, 64) for k in kinds]).to_pandas()[
            ["brightness", "contrast"]]
        ref["pred"] = ref["y"] = kinds
        register_model(http, name, ref, {"prediction": "pred", "target": "y"})
        now = time.time() - 120
        files = [fruit_jpeg("banana", rng, 64), fruit_jpeg("cucumber", rng, 64),
                 to_jpeg(Image.new("RGB", (64, 64))), b"not an image"]
        pids = ["ok-banana", "wrong-banana", EVIL, "text"]
        metas = [{"prediction_id": p, "timestamp": now + i, "prediction": "banana"}
                 for i, p in enumerate(pids)]
        out = http.post(f"/models/{name}/images", data={"metadata": json.dumps(metas)},
                        files=[("files", (f"{i}.jpg", d, "image/jpeg"))
                               for i, d in enumerate(files)]).json()
        assert out["quarantined"] == 2, out
        http.post(f"/models/{name}/labels", json=[
            {"prediction_id": "ok-banana", "label": "banana"},
            {"prediction_id": "wrong-banana", "label": "cucumber"}]).raise_for_status()
        yield srv, name


def test_the_gallery_shows_quarantined_and_misclassified_images(gallery, watched) -> None:
    server, name = gallery
    page = watched.page
    watched.open(f"{server.url}/models/{name}/images")
    cards = page.locator("#gallery-quarantined li")
    assert cards.count() == 2
    text = page.inner_text("#gallery-quarantined")
    assert "constant:" in text and "not_an_image:" in text
    assert EVIL in text and page.locator("#pwn").count() == 0  # shown as text, not markup
    black = page.locator(f"#gallery-quarantined li[data-image='{EVIL}'] img")
    assert black.evaluate("img => img.complete && img.naturalWidth") == 64
    assert page.locator("#gallery-quarantined li[data-image='text'] img").count() == 0
    wrong = page.locator("#gallery-misclassified li")
    assert wrong.count() == 1
    assert "labelled cucumber" in wrong.inner_text()
    assert wrong.locator("img").evaluate("img => img.complete && img.naturalWidth") == 64
    # the profiled image properties, reference against the last hours, drawn as charts
    props = page.locator("#gallery-properties [data-chart]")
    assert props.count() == 2
    for column in ("brightness", "contrast"):
        chart = page.locator(f"#gallery-properties [data-chart='image-dist-{column}']")
        chart.wait_for(state="attached")
        page.wait_for_function("el => el.dataset.rendered === 'true'",
                               arg=chart.element_handle())
        assert int(chart.get_attribute("data-points") or 0) > 0
    assert "brightness: distribution" in page.inner_text("#gallery-properties")
    watched.shot("image-gallery")


def test_the_model_page_links_to_the_gallery(gallery, watched) -> None:
    """An image model's page links to its gallery; a tabular model's page does not."""
    server, name = gallery
    page = watched.page
    watched.open(f"{server.url}/models/{name}")
    link = page.locator("a.images-link")
    assert link.count() == 1
    link.click()
    page.wait_for_url(f"**/models/{name}/images")
    assert page.locator("#gallery-quarantined li").count() == 2
    other = f"tabular-{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        register_model(http, other)
    watched.open(f"{server.url}/models/{other}")
    assert page.locator("a.images-link").count() == 0
