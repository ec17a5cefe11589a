# cliproxy in a container (README "Running it for real"): Debian trixie's own Python 3.13 in a venv.
#   docker build -t cliproxy .
#   docker run --rm -p 8317:8317 -v "$PWD/config.yaml:/app/config.yaml" \
#       -v ~/.cli-proxy-api:/root/.cli-proxy-api cliproxy
#   docker run --rm -it -p 8085:8085 -v ~/.cli-proxy-api:/root/.cli-proxy-api \
#       cliproxy cliproxy login gemini --no-browser            (1455 for codex)
# Certificates in certs/*.crt (a TLS-intercepting corporate proxy) are trusted while building
# (pip) and at run time (httpx and mitmproxy's upstream checks).
FROM debian:trixie-slim

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

COPY certs/ /usr/local/share/ca-certificates/cliproxy/
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && update-ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# pip, httpx and mitmproxy read the system bundle (which now holds certs/*.crt), not certifi's
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PATH=/opt/venv/bin:$PATH \
    CLIPROXY_CONFIG=/app/config.yaml \
    CLIPROXY_CALLBACK_HOST=0.0.0.0

WORKDIR /app
COPY pyproject.toml setup.py README.md /app/
COPY addons /app/addons
COPY translators /app/translators
COPY scripts /app/scripts
# PIP_INDEX_URL / PIP_EXTRA_INDEX_URL may be passed as build args for a private mirror
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir /app \
    && mkdir -p -m 0700 /root/.cli-proxy-api

VOLUME ["/root/.cli-proxy-api"]
EXPOSE 8317 8085 1455
# The main job with /app/config.yaml (mount yours); mitmproxy checks upstream certificates
# against the system bundle, certs/*.crt included.
CMD ["mitmdump", "-s", "/app/addons/cliproxy.py", \
     "--set", "cliproxy_config=/app/config.yaml", \
     "--set", "ssl_verify_upstream_trusted_ca=/etc/ssl/certs/ca-certificates.crt"]
