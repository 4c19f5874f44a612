# syntax=docker/dockerfile:1
#
# mltoolkit as a batch image.
#
#   docker build -t mltoolkit .
#   mkdir -p out && docker run --rm -v "$PWD/out:/work" mltoolkit
#
# runs the native Prefect flow on the bundled inputs (/app/inputs.yml, the seed's
# moon data and five classifiers) and leaves yadage's layout in the mounted folder:
# out/workdir/merge_and_visualize/ml_results.png, out/workdir/scores.json, ...
#
# The image also provides /fun_with_ml/{data_prep,classification,merge_and_plot}.py
# with the seed scripts' command lines, so the seed's docker-encapsulated steps
# (image danikam/sklearn) run in it unchanged:
#
#   docker run --rm -v "$PWD/out:/work" mltoolkit \
#       python /fun_with_ml/data_prep.py --dataset 'https://www.dropbox.com/s/ovyxd3q4td7jd3m/moon.txt?dl=1' \
#       --outfile /work/prepped_data.pkl
#
# It runs as user mltk (uid 1000). For a mounted folder that another uid owns, run
# as that uid with a writable home: --user "$(id -u):$(id -g)" -e HOME=/tmp

ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

# The versions the toolkit is tested with; --build-arg tries others.
ARG PREFECT_VERSION=3.9.1
ARG SCIKIT_LEARN_VERSION=1.9.1
ARG NUMPY_VERSION=2.4.6
ARG MATPLOTLIB_VERSION=3.11.2

# A container is one run: no usage reports, and no API server kept alive for a
# next command that will never come in this container.
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    MLTOOLKIT_API_IDLE_TIMEOUT=0 \
    MPLBACKEND=Agg \
    HOME=/home/mltk

# Same ids as the usual first user of a Linux host, so a folder that user
# mounts is writable without --user.
RUN groupadd --gid 1000 mltk \
    && useradd --uid 1000 --gid mltk --home-dir /home/mltk --create-home --shell /bin/bash mltk \
    && mkdir /work \
    && chown mltk:mltk /work

# Kept in the image: a preservation image should carry the code it runs.
WORKDIR /usr/src/mltoolkit
# README* rather than README.md: the build only needs it for metadata, and a
# glob that matches nothing does not fail the build.
COPY pyproject.toml README* ./
COPY mltoolkit ./mltoolkit
COPY flows ./flows
RUN pip install --no-cache-dir . \
        "prefect==${PREFECT_VERSION}" \
        "scikit-learn==${SCIKIT_LEARN_VERSION}" \
        "numpy==${NUMPY_VERSION}" \
        "matplotlib==${MATPLOTLIB_VERSION}" \
    && rm -rf build ./*.egg-info

# The paths the seed's steps.yml calls; the copies import the installed mltoolkit.
COPY mltoolkit/analysis/fun_with_ml/data_prep.py \
     mltoolkit/analysis/fun_with_ml/classification.py \
     mltoolkit/analysis/fun_with_ml/merge_and_plot.py \
     /fun_with_ml/
# The default command's inputs; inputs.yml names data/moon.txt relative to itself.
COPY inputs.yml /app/inputs.yml
COPY data /app/data

# Numeric, so runtimes that check for a non-root user (runAsNonRoot) can tell.
USER 1000:1000
# Outside the source tree, so `python` imports the installed toolkit, not /usr/src's.
WORKDIR /work
# Done once here instead of in every container: Prefect's database migrations
# (~6 s of each fresh run) and matplotlib's font cache. Importing the preload
# module also proves the installed toolkit imports and draws.
RUN prefect server database upgrade -y \
    && python -c "import mltoolkit.analysis.preload"

CMD ["python", "-m", "flows.ml_workflow", "--inputs", "/app/inputs.yml", "--workdir", "/work/workdir"]
