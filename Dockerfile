# Batchscope for a team server: `streamlit run app.py` as a non-root user, data in a volume.
# Build, run, upgrade and the reverse proxy in front: README.md, "Run on a team server".
FROM debian:bookworm-slim

# Debian's Python 3.11 gets its security fixes from bookworm's updates, so the base tag is
# the pin: exact apt versions would break this build the day a fixed package replaces them.
# ca-certificates: HTTPS for a first-use download into an empty /data.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN python3 -m venv "$VIRTUAL_ENV"

# PyTorch comes from TORCH_INDEX_URL: CPU wheels by default, as a dashboard needs no CUDA.
# Every other package comes from pip's usual index. pip also reads PIP_FIND_LINKS (folders or
# pages of wheels, e.g. a local mirror mounted for the build) from the environment.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_FIND_LINKS=""
WORKDIR /app
COPY requirements.txt ./
# torch and torchvision keep their pins from requirements.txt ("==2.14.1" accepts
# "2.14.1+cpu"), so the second install finds them satisfied and fetches no CUDA build.
RUN grep -E '^(torch|torchvision)==' requirements.txt > /tmp/torch-requirements.txt \
    && pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" -r /tmp/torch-requirements.txt \
    && pip install --no-cache-dir -r requirements.txt \
    && rm /tmp/torch-requirements.txt \
    && python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"

# A numeric user, so an orchestrator can tell it is not root (Kubernetes' runAsNonRoot).
# The code below stays root's: the app can read it, not change it.
RUN groupadd --system --gid 10001 batchscope \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --create-home \
        --home-dir /home/batchscope --shell /usr/sbin/nologin batchscope \
    && install -d -o 10001 -g 10001 -m 0755 /data /cache
# Each dataset's per-sample index lives in BATCHSCOPE_CACHE, a volume of its own: the data
# volume can stay read-only, and the index outlives the container (README, "The index").
ENV DATALIB_ROOT=/data \
    BATCHSCOPE_CACHE=/cache

COPY datalib/ datalib/
USER 10001:10001
# Bake datasets into the image for a server without internet, e.g. --build-arg
# BAKE_DATASETS=mnist. Docker copies them into a new named volume on its first use.
ARG BAKE_DATASETS=""
RUN for name in $BAKE_DATASETS; do python -m datalib download "$name" || exit 1; done
VOLUME ["/data", "/cache"]

COPY .streamlit/config.toml .streamlit/config.toml
COPY app.py ui.py ./
COPY pages/ pages/

# .streamlit/config.toml holds the server settings (headless, XSRF protection on, usage
# stats off, no file watcher); address and port are here so `-e` can change them, and the
# health check follows STREAMLIT_SERVER_PORT and STREAMLIT_SERVER_BASE_URL_PATH.
ENV STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_PORT=8501
LABEL org.opencontainers.image.title="Batchscope" \
      org.opencontainers.image.description="See your image dataset the way your DataLoader does: a Streamlit dashboard over torchvision datasets."
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('STREAMLIT_SERVER_PORT', '8501'); base = os.environ.get('STREAMLIT_SERVER_BASE_URL_PATH', '').strip('/'); path = f'/{base}/_stcore/health' if base else '/_stcore/health'; raise SystemExit(urllib.request.urlopen(f'http://127.0.0.1:{port}{path}', timeout=4).read() != b'ok')"]
ENTRYPOINT ["streamlit", "run", "app.py"]
