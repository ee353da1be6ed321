# syntax=docker/dockerfile:1
# One image for every role; the command picks it:
#   docker run IMAGE serve                 API (default command; zero-config when no URLs are given)
#   docker run IMAGE worker                Dramatiq workers
#   docker run IMAGE scheduler             the scheduler
#   docker run IMAGE migrate upgrade       apply migrations (run once per release, before new API replicas)
# Production passes INSIGHTS_DATABASE_URL, INSIGHTS_REDIS_URL, INSIGHTS_SECRET_KEY and
# INSIGHTS_ENVIRONMENT=production. Versions are pinned by constraints.txt (linux/amd64, Python 3.11).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the pinned dependencies, then the project itself -----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first (runtime ones only, no `dev` extra): this layer is rebuilt only when
# pyproject.toml or constraints.txt change.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -c constraints.txt -r /tmp/requirements.txt

COPY README.md ./
COPY server ./server
COPY graph ./graph
COPY workers ./workers
COPY migrations ./migrations
RUN /opt/venv/bin/pip install --no-deps -c constraints.txt .

# --- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 insights \
    && useradd --system --uid 10001 --gid insights --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin insights \
    && mkdir -p /data \
    && chown insights:insights /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    INSIGHTS_HOST=0.0.0.0 \
    INSIGHTS_PORT=8000 \
    INSIGHTS_HOME=/data
WORKDIR /data
USER insights
# Zero-config data (embedded PostgreSQL/Redis), exports and the development secret key.
VOLUME ["/data"]
EXPOSE 8000

# The API answers /api/v1/health (200 while the database is reachable). Worker and scheduler
# containers serve no HTTP: for them the check only confirms the process is up.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD \
    python -c "import os, sys, urllib.request; \
args = open('/proc/1/cmdline', 'rb').read().split(b'\0'); \
sys.exit(0) if b'serve' not in args else None; \
r = urllib.request.urlopen('http://127.0.0.1:%s/api/v1/health' % os.environ.get('INSIGHTS_PORT', '8000'), timeout=4); \
sys.exit(0 if r.status == 200 else 1)"

ENTRYPOINT ["insights"]
CMD ["serve"]
