# syntax=docker/dockerfile:1
# One image for every function: the Knative Service picks the function with
# FUNCTION_SOURCE=functions/<folder>/main.py and FUNCTION_TARGET=handle (functions-framework
# reads both), so one build and one pull serve all Services.
#   docker build -t auxip:dev .
#   docker run -e FUNCTION_SOURCE=functions/ingest/main.py -p 8080:8080 auxip:dev
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/auxip/venv
WORKDIR /src
# Dependencies first, from the metadata alone: the layer stays cached while code changes.
COPY pyproject.toml README.md LICENSE NOTICE ./
RUN mkdir -p shared events functions \
 && /opt/auxip/venv/bin/pip install . \
 && /opt/auxip/venv/bin/pip uninstall --yes auxip
# The licences of what was just installed are judged against audit/licences.toml (one not
# allowed fails the build) and their texts and notices become the third-party report the
# image carries; the tools run from a throwaway venv of their own (README, "Supply-chain
# checks").
COPY audit ./audit
RUN python -m audit licences --runtime-python /opt/auxip/venv/bin/python \
        --tools-venv /tmp/audit-tools --out /tmp/audit \
 && cp /tmp/audit/THIRD_PARTY_LICENSES.txt /opt/auxip/ \
 && rm -rf /tmp/audit-tools /tmp/audit
COPY shared ./shared
COPY events ./events
COPY functions ./functions
# functions/ beside the working directory, as in the repository, so FUNCTION_SOURCE is the
# same relative path here and for the local stack. `python -I` finds the installed package,
# not the functions/ folder of this working directory.
RUN /opt/auxip/venv/bin/pip install --no-deps . \
 && ln -s "$(/opt/auxip/venv/bin/python -I -c 'import functions, os; print(os.path.dirname(functions.__file__))')" \
          /opt/auxip/functions

FROM python:${PYTHON_VERSION}-slim-bookworm
LABEL org.opencontainers.image.title="auxip" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin auxip
# The venv and THIRD_PARTY_LICENSES.txt; beside them, auxip's own licence and notice.
COPY --from=build /opt/auxip /opt/auxip
COPY LICENSE NOTICE /opt/auxip/
ENV PATH=/opt/auxip/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FUNCTION_TARGET=handle \
    PORT=8080
WORKDIR /opt/auxip
# Numeric, so that Kubernetes can verify runAsNonRoot.
USER 10001
EXPOSE 8080
CMD ["functions-framework"]
