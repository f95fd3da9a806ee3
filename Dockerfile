# CPU image serving the web app and POST /api/inpaint with the bundled default weights.
# Not built on the project's machines (no Docker engine there); conventional on purpose.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 GRADIO_ANALYTICS_ENABLED=False
RUN apt-get update && apt-get install -y --no-install-recommends curl libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 app
WORKDIR /opt/inpaintkit
COPY pyproject.toml constraints.txt README.md ./
COPY inpaintkit ./inpaintkit
# The CPU build of torch, pinned like the Makefile does.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt '.[app,onnx]'
USER app
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:7860/ > /dev/null || exit 1
CMD ["inpaintkit", "app", "--host", "0.0.0.0", "--port", "7860"]
