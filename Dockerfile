# figwatch: multi-stage build from the project's wheel, pinned by requirements.lock.
# tests/test_container.py runs the same install and entrypoint commands directly
# (no Docker engine on the CI machine); keep the commands marked "test:" in sync.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY parsers ./parsers
COPY service ./service
COPY config ./config
# test: build wheels
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c requirements.lock .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 figwatch
COPY --from=build /wheels /wheels
# test: install
RUN pip install --no-cache-dir --no-index --find-links /wheels figwatch && rm -rf /wheels
COPY seeds /app/seeds
COPY config/figwatch.example.toml /app/config/figwatch.example.toml
WORKDIR /data
RUN chown figwatch /data
VOLUME ["/data"]
USER figwatch
ENV FIGWATCH_DATABASE_URL=sqlite:////data/figwatch.db \
    FIGWATCH_LISTEN=0.0.0.0:8787 \
    FIGWATCH_CONFIG=/data/figwatch.toml
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8787/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["figwatch", "run"]
