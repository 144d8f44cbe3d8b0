# aiwarden server image (docs/deployment.md).
#
#   docker build -t aiwarden .
#   docker build -t aiwarden --build-arg EXTRAS=postgres,polars .   # other extras
#
# Two stages: the first builds a virtual environment from this source tree (wheels only, no
# compiler: every dependency ships manylinux wheels); the second copies that environment into
# a clean slim image, so the source tree, pip's cache and build tools are not shipped.
# The server runs as an unprivileged user (uid 10001) and keeps its files in
# /var/lib/aiwarden (a volume). tests/test_deployment.py checks these lines against the
# server's settings and runs the healthcheck command against a real server.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
# every feature the server itself serves: PostgreSQL, safe-format registry, protobuf OTLP,
# image ingest, explanations (lime ships no wheel: it alone is built, pure Python), fast paths
ARG EXTRAS=postgres,registry,otel,images,explain,fast
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY aiwarden ./aiwarden
RUN python -m venv /opt/aiwarden \
 && /opt/aiwarden/bin/pip install --only-binary=:all: --no-binary=aiwarden,lime ".[${EXTRAS}]" \
 && /opt/aiwarden/bin/aiwarden --help >/dev/null

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# The group is made first with gid 10001: `useradd --user-group` gave it a system gid (999 in
# the rehearsal, deploy/rehearse-dockerfile.sh), so the volume was group-owned by 999 while
# the server (USER 10001:10001) ran with an unnamed gid 10001.
RUN groupadd --system --gid 10001 aiwarden \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/aiwarden --create-home \
        --shell /usr/sbin/nologin aiwarden
COPY --from=build /opt/aiwarden /opt/aiwarden
# AIWARDEN_HOST=0.0.0.0: reachable from outside the container, so the server refuses to start
# until an API key exists (create one first: docs/deployment.md, First start).
ENV PATH=/opt/aiwarden/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AIWARDEN_HOST=0.0.0.0 \
    AIWARDEN_PORT=8000 \
    AIWARDEN_DATA_DIR=/var/lib/aiwarden
USER 10001:10001
WORKDIR /var/lib/aiwarden
VOLUME ["/var/lib/aiwarden"]
EXPOSE 8000
# Liveness on /healthz, from inside the container (no curl in a slim image: Python's own
# urllib). It asks for 127.0.0.1: keep that name in AIWARDEN_ALLOWED_HOSTS if you set it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AIWARDEN_PORT', '8000') + '/healthz', timeout=4)"
ENTRYPOINT ["aiwarden"]
CMD ["server"]
