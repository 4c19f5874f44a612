# mltoolkit as a batch image.
#
#   docker build -t mltoolkit .
#   mkdir -p out && docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/out:/work" mltoolkit
#
# runs the native Prefect flow on the bundled inputs (/app/inputs.yml, the seed's
# moon data and five classifiers) and leaves yadage's layout in the mounted folder,
# owned by whoever ran the command: out/workdir/merge_and_visualize/ml_results.png,
# out/workdir/scores.json, ...  Without --user the container runs as mltk (uid 1000).
#
# The image also provides /fun_with_ml/{data_prep,classification,merge_and_plot}.py
# with the seed scripts' command lines, so the seed's docker-encapsulated steps
# (image danikam/sklearn) run in it unchanged.
#
# Build inputs (all optional; the README's Docker section shows the tested commands):
#   --build-arg BASE_IMAGE=local/debian:bookworm
#       any Debian bookworm-like image. The default has Python; a base without it
#       (e.g. one made offline with debootstrap) gets python3, venv and the CA
#       bundle from its apt sources.
#   deployments/ca-certificates/*.crt, or --build-arg EXTRA_CA_CERTS=<folder in the
#   build context>, or with buildx --build-context extra-ca-certificates=<any folder>
#       extra CA certificates (a TLS-intercepting proxy's) trusted by pip during the
#       build only. They exist only in the `dependencies` stage: the final image has
#       the base's own trust store, none of these files and no trace of them.
# Works with BuildKit and with the classic builder (no BuildKit-only syntax).

ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG EXTRA_CA_CERTS=deployments/ca-certificates

# --- the extra CA certificates, as a stage of their own ------------------------------
# A stage rather than a plain COPY, so that buildx's --build-context can replace it
# with a folder outside the build context (not tried here: these machines have no buildx).
FROM scratch AS extra-ca-certificates
ARG EXTRA_CA_CERTS
COPY ${EXTRA_CA_CERTS}/ /

# --- Python 3 with venv and a CA bundle, whatever the base brings ---------------------
FROM ${BASE_IMAGE} AS python-base
# Only what is missing is installed: the default base already has all of it.
# No apt version pins: the versions are those of the base's own Debian release.
# hadolint ignore=DL3008
RUN if python3 -m venv /tmp/venv-probe > /dev/null 2>&1 && [ -s /etc/ssl/certs/ca-certificates.crt ]; then \
        rm -rf /tmp/venv-probe; \
    else \
        rm -rf /tmp/venv-probe \
        && apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi
# Same ids as the usual first user of a Linux host. /work is writable for any
# uid, so `--user "$(id -u):$(id -g)"` works with or without a mounted folder.
RUN groupadd --gid 1000 mltk \
    && useradd --uid 1000 --gid mltk --home-dir /home/mltk --create-home --shell /bin/bash mltk \
    && mkdir -m 1777 /work
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# --- the pinned dependencies in a venv (the only stage where pip downloads) ------------
FROM python-base AS dependencies
# The versions the toolkit is tested with; --build-arg tries others.
ARG PREFECT_VERSION=3.9.1
ARG SCIKIT_LEARN_VERSION=1.9.1
ARG NUMPY_VERSION=2.4.6
ARG MATPLOTLIB_VERSION=3.11.2
COPY --from=extra-ca-certificates / /usr/local/share/ca-certificates/mltoolkit-build/
# pip trusts its own bundle (certifi) unless told otherwise: point it at the
# system bundle, which update-ca-certificates extends with the certificates above.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
# From pyproject.toml alone (build requirements included, so the package itself
# installs offline below): a change to the toolkit's code keeps this cached.
COPY pyproject.toml /tmp/pyproject.toml
RUN update-ca-certificates \
    && python3 -m venv /opt/mltoolkit \
    && python3 -c "import tomllib; p = tomllib.load(open('/tmp/pyproject.toml', 'rb')); \
print(*p['build-system']['requires'], *p['project']['dependencies'], sep='\n')" > /tmp/requirements.txt \
    && /opt/mltoolkit/bin/pip install --no-cache-dir -r /tmp/requirements.txt \
        "prefect==${PREFECT_VERSION}" \
        "scikit-learn==${SCIKIT_LEARN_VERSION}" \
        "numpy==${NUMPY_VERSION}" \
        "matplotlib==${MATPLOTLIB_VERSION}" \
    && rm /tmp/requirements.txt /tmp/pyproject.toml

# --- the image: python-base + the venv + the package ------------------------------------
FROM python-base
# A container is one run: no usage reports, and no API server kept alive for a
# next command that will never come in this container.
ENV PATH=/opt/mltoolkit/bin:$PATH \
    VIRTUAL_ENV=/opt/mltoolkit \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    MLTOOLKIT_API_IDLE_TIMEOUT=0 \
    MPLBACKEND=Agg \
    HOME=/home/mltk
# The venv alone: nothing else of the dependencies stage (its CA certificates) comes along.
COPY --from=dependencies /opt/mltoolkit /opt/mltoolkit
# Kept in the image: a preservation image should carry the code it runs.
WORKDIR /usr/src/mltoolkit
# README* rather than README.md: the build only needs it for metadata, and a
# glob that matches nothing does not fail the build.
COPY pyproject.toml README* ./
COPY mltoolkit ./mltoolkit
COPY flows ./flows
# Offline (--no-deps, build requirements already in the venv): a small layer of its own.
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
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
# Done once here instead of in every container: Prefect's database (created at the
# head revision, so a container's server finds no migration to run) and matplotlib's
# font cache. Importing the preload module also proves the installed toolkit imports
# and draws. The home is then opened to every uid, so a container started with
# --user "$(id -u):$(id -g)" uses the same warm database and caches.
RUN prefect server database upgrade -y \
    && python -c "import mltoolkit.analysis.preload" \
    && chmod -R a+rwX "$HOME"

CMD ["python", "-m", "flows.ml_workflow", "--inputs", "/app/inputs.yml", "--workdir", "/work/workdir"]
