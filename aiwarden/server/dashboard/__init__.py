"""The web dashboard served at ``/`` (docs/dashboard.md).

Server-rendered pages (Jinja2) with htmx for actions and lazily loaded panels, and
Apache ECharts for the charts; every asset ships in ``aiwarden/server/static``, so the
dashboard works offline. Data comes from the same services as the REST API (``Monitor``,
``IncidentService``, the alert repository, the registry), aggregated on the server.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from aiwarden.server.dashboard.render import STATIC
from aiwarden.server.dashboard.web import Static

__all__ = ["install_dashboard"]


def install_dashboard(app: FastAPI) -> None:
    """Mount the pages and the static assets (compressed: ECharts is 1 MB, 0.35 MB gzipped)."""
    from aiwarden.server.dashboard import (
        alert_pages,
        explain_pages,
        image_pages,
        incident_pages,
        llm_pages,
        pages,
        quarantine_pages,
        rollback,
        training_pages,
    )

    for module in (pages, llm_pages, incident_pages, rollback, alert_pages,
                   quarantine_pages, training_pages, explain_pages, image_pages):
        app.include_router(module.router)
    app.mount("/static", GZipMiddleware(Static(directory=str(STATIC)), minimum_size=1024),
              name="static")
