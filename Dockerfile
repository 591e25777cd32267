# The secretstore node image: one key-server node, run as an unprivileged user.
#
#   docker build -t secretstore .                                  # on python:3.11-slim
#   docker build --network host --build-arg BASE_IMAGE=$(scripts/make-base-image) -t secretstore .
#
# BASE_IMAGE is any Debian-like image with Python >= 3.11 whose `python3 -m venv` works (the
# tests use a Debian bookworm root made by mmdebstrap, see scripts/make-base-image). The node
# reads /etc/secretstore/node.toml (mount it read-only; readable by uid 10001) and keeps its
# key database on the volume /var/lib/secretstore (set `path` in the config under it).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/secretstore
COPY pyproject.toml README.md /src/
COPY secretstore /src/secretstore
RUN /opt/secretstore/bin/pip install /src \
    && /opt/secretstore/bin/pip uninstall --yes pip setuptools \
    && find /opt/secretstore -name tests -type d -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
COPY --from=build /opt/secretstore /opt/secretstore
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/secretstore \
        --shell /usr/sbin/nologin secretstore \
    && mkdir -p /etc/secretstore /var/lib/secretstore \
    && chown secretstore:secretstore /var/lib/secretstore \
    && chmod 0700 /var/lib/secretstore
ENV PATH=/opt/secretstore/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /var/lib/secretstore
VOLUME /var/lib/secretstore
# HTTP API (Parity's 8082) and the node-to-node port (Parity's default 8083)
EXPOSE 8082 8083
HEALTHCHECK --interval=10s --timeout=10s --start-period=30s --retries=3 \
    CMD ["secretstore", "health", "--config", "/etc/secretstore/node.toml"]
ENTRYPOINT ["secretstore-node"]
CMD ["--config", "/etc/secretstore/node.toml"]
