# A slim, non-root image of the gateway.
#   docker build -t llm-gateway .
#   docker run -p 4000:4000 -v $PWD/config.yaml:/etc/gateway/config.yaml:ro llm-gateway
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /app --create-home gateway
WORKDIR /app
COPY --chown=gateway:gateway policies ./policies
USER gateway
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:4000/healthz', timeout=2).status == 200 else 1)"
# Without a mounted config the embedded demo defaults (mock model) are served.
CMD ["sh", "-c", "if [ -f /etc/gateway/config.yaml ]; then exec gateway serve --config /etc/gateway/config.yaml --host 0.0.0.0 --port 4000; else exec gateway serve --host 0.0.0.0 --port 4000; fi"]
