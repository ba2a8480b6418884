# fakeai: an OpenAI-compatible LLM inference simulator.
# Build: docker build -t fakeai .    Run: docker run -p 8000:8000 -v fakeai-data:/data fakeai

# -- build stage: wheels for fakeai and its dependencies ------------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fakeai ./fakeai
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# -- runtime stage: no compiler, no sources, a non-root user ----------------------------------
FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --create-home fakeai
COPY --from=build /wheels /wheels
# the wheels built above are the pins: --no-index installs exactly those
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-index --find-links=/wheels fakeai && rm -rf /wheels
USER 10001
WORKDIR /data
ENV FAKEAI_HOST=0.0.0.0 \
    FAKEAI_PORT=8000 \
    FAKEAI_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2).status != 200)"]
ENTRYPOINT ["fakeai", "server"]
