# One image for the API and the worker; configure with SOG_* and OS_* environment variables.
#   API:    docker run -p 8001:8001 -e SOG_DATABASE_URL=postgresql+asyncpg://... IMAGE
#   worker: docker run -e SOG_DATABASE_URL=... IMAGE sog-api worker
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SOG_HOST=0.0.0.0 \
    SOG_PORT=8001 \
    SOG_MIGRATIONS_DIR=/app/migrations \
    SOG_DATABASE_URL=sqlite+aiosqlite:////data/sog.db
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /app sog \
    && mkdir -p /app /data && chown sog /data
WORKDIR /app
COPY migrations ./migrations
USER sog
# The embedded SQLite default keeps its file here; production points SOG_DATABASE_URL at PostgreSQL.
VOLUME ["/data"]
EXPOSE 8001
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import os,sys,urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SOG_PORT', '8001')).status != 200)"
CMD ["sog-api", "serve"]
