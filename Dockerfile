# streamdeid in a container: `docker build -t streamdeid .`, then e.g.
#   docker run --rm -v "$PWD:/data" streamdeid run /data/in.mp4 -o /data/out.mp4
# Two stages: the wheel is built from the sources in the first, and only the wheel (with its
# package data: configs, RetinaFace model) is installed in the second, exactly as a user would.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streamdeid ./streamdeid
COPY configs ./configs
RUN pip install --no-cache-dir "build>=1.2" && python -m build --wheel --outdir /dist

FROM python:3.11-slim
# opencv-contrib-python (pulled by mediapipe) links libGL and glib even when no window opens.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl
# Never run as root: the container reads footage and writes anonymized video to mounted folders.
RUN useradd --create-home --uid 1000 app
USER app
WORKDIR /data
# numba keeps its compiled kernels in the user's cache, so the second run starts faster.
ENV NUMBA_CACHE_DIR=/home/app/.cache/numba
ENTRYPOINT ["streamdeid"]
CMD ["--help"]
