# The API as a container: slim Python pinned to a patch release, dependencies in their
# own cached layer, running as an unprivileged numeric user. Configuration comes from the
# environment (see README).
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000

WORKDIR /app
RUN useradd --create-home --uid 10001 app

# Requirements change far less often than the code: this layer stays cached.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY config.yaml ./
COPY server ./server
COPY handlers ./handlers
COPY services ./services
COPY seeds ./seeds

# Numeric, so that the platform can tell it is not root without reading /etc/passwd.
USER 10001
EXPOSE 8000

# The standard library is enough to probe /healthz: no curl in the image.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]

# SIGTERM from `docker stop` reaches Python directly (exec form): graceful shutdown.
CMD ["python", "-m", "server"]
