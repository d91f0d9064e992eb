# A slim, non-root image of the gateway.
#   docker build -t llm-gateway .
#   docker run -p 4000:4000 -v $PWD/config.yaml:/etc/gateway/config.yaml:ro llm-gateway
# The base is pinned by version and digest (the multi-platform index of
# python:3.11.15-slim-bookworm, from docker-library/repo-info), so a rebuild gets the same
# bytes; change both stages together to take a new Python or Debian patch release.
FROM python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3 AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True
COPY --from=build /install /usr/local
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --create-home gateway
WORKDIR /app
COPY --chown=10001:10001 policies ./policies
# Numeric, so that Kubernetes (runAsNonRoot) can verify it; the Helm chart runs as 10001:10001.
USER 10001:10001
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:4000/healthz', timeout=2).status == 200 else 1)"
# Without a mounted config the embedded demo defaults (mock model) are served, but only with
# keys of your own: the built-in demo keys are public, and `gateway serve` refuses them on
# 0.0.0.0 (docker run -e GATEWAY_DEMO_KEY=... -e GATEWAY_ADMIN_KEY=... -p 4000:4000 llm-gateway).
CMD ["sh", "-c", "if [ -f /etc/gateway/config.yaml ]; then exec gateway serve --config /etc/gateway/config.yaml --host 0.0.0.0 --port 4000; else exec gateway serve --host 0.0.0.0 --port 4000; fi"]
