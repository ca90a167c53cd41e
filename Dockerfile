# The etcd appliance: etcd.py (the agent) and etcd, one image per etcd minor (README, "The image").
#
# The base of both stages, pinned by the digest of its multi-platform index: a commit builds from
# the same bytes whenever it is built, while the tag moves with every Python patch and Debian
# point release (with a digest, docker ignores the tag: it stays for readers). This digest is the
# one docker-library/repo-info records for the tag at commit 40cdaf34215d
# (repos/python/remote/3.11-slim-bookworm.md: Python 3.11.16 on Debian 12, built 2026-09-19) and
# the one Docker Hub's tag API reported on 2026-09-21. To move to the tag's current image, put
# here the "Digest:" of `docker buildx imagetools inspect python:3.11-slim-bookworm`.
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

# The defaults build the newest minor. Every etcd version and SHA-256 here is a line of
# etcd-releases.txt, which says where each SHA-256 is published; delivery.yaml builds the other
# minors with that file's values, and tests/integration/test_image.py holds the three together.
# ETCD_OLD_VERSION="" builds an image without etcd.old (the 3.4 image: etcd 3.3 has no learners,
# and the agent adds every member as a learner).
ARG ETCD_VERSION=3.5.21
ARG ETCD_SHA256=adddda4b06718e68671ffabff2f8cee48488ba61ad82900e639d108f2148501c
ARG ETCD_OLD_VERSION=3.4.13
ARG ETCD_OLD_SHA256=2ac029e47bab752dacdb7b30032f230f49e2f457cbc32e8f555c2210bb5ff107

# The release tarballs are fetched and unpacked in a stage of their own, so that neither they nor
# a download tool reach the image. Python's urllib downloads: no package to install (and pin).
FROM ${BASE_IMAGE} AS etcd-release
ARG ETCD_VERSION
ARG ETCD_SHA256
ARG ETCD_OLD_VERSION
ARG ETCD_OLD_SHA256
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
WORKDIR /tmp/etcd-release
# fetch VERSION SHA256: the tarball is checked against SHA256 before tar reads it; a mismatch
# (or an empty SHA256) fails the build. Each binary must then report VERSION: a tarball whose
# contents are not what its name says fails too.
RUN fetch() { \
      python3 -c 'import shutil, sys, urllib.request; shutil.copyfileobj(urllib.request.urlopen(sys.argv[1], timeout=120), open(sys.argv[2], "wb"))' \
        "https://github.com/etcd-io/etcd/releases/download/v$1/etcd-v$1-linux-amd64.tar.gz" "etcd-v$1-linux-amd64.tar.gz"; \
      echo "$2  etcd-v$1-linux-amd64.tar.gz" | sha256sum --check --strict; \
      tar -xzf "etcd-v$1-linux-amd64.tar.gz"; \
    }; \
    fetch "${ETCD_VERSION}" "${ETCD_SHA256}"; \
    src="etcd-v${ETCD_VERSION}-linux-amd64"; \
    # etcdutl reads and restores snapshot files from 3.5 on; for 3.4 the agent uses etcdctl.
    tools="etcd etcdctl etcdutl"; \
    if [[ "${ETCD_VERSION}" == 3.4.* ]]; then tools="etcd etcdctl"; fi; \
    for tool in ${tools}; do install -D -m 0755 "${src}/${tool}" "/out/usr/local/bin/${tool}"; done; \
    /out/usr/local/bin/etcd --version | grep -x "etcd Version: ${ETCD_VERSION}"; \
    /out/usr/local/bin/etcdctl version | grep -x "etcdctl version: ${ETCD_VERSION}"; \
    if [[ "${tools}" == *etcdutl ]]; then /out/usr/local/bin/etcdutl version | grep -x "etcdutl version: ${ETCD_VERSION}"; fi; \
    if [[ -n "${ETCD_OLD_VERSION}" ]]; then \
      fetch "${ETCD_OLD_VERSION}" "${ETCD_OLD_SHA256}"; \
      # The previous minor in a directory of its own, with its own etcdctl: the agent takes its
      # snapshot tools from beside APPLIANCE_ETCD_BINARY, so APPLIANCE_ETCD_BINARY=/usr/local/lib/etcd.old/etcd runs
      # the previous minor with tools of that minor.
      for tool in etcd etcdctl; do install -D -m 0755 "etcd-v${ETCD_OLD_VERSION}-linux-amd64/${tool}" "/out/usr/local/lib/etcd.old/${tool}"; done; \
      ln -s ../lib/etcd.old/etcd /out/usr/local/bin/etcd.old; \
      ln -s ../lib/etcd.old/etcdctl /out/usr/local/bin/etcdctl.old; \
      /out/usr/local/bin/etcd.old --version | grep -x "etcd Version: ${ETCD_OLD_VERSION}"; \
      /out/usr/local/bin/etcdctl.old version | grep -x "etcdctl version: ${ETCD_OLD_VERSION}"; \
    fi

FROM ${BASE_IMAGE}
ARG ETCD_VERSION
ARG ETCD_OLD_VERSION
LABEL org.opencontainers.image.title="etcd-appliance" \
      org.opencontainers.image.description="Self-managing etcd appliance for AWS: etcd.py and etcd" \
      etcd.version="${ETCD_VERSION}" \
      etcd.old.version="${ETCD_OLD_VERSION}"
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid, so that a host directory mounted as the data directory can be given to it
# (cloudformation/*.yaml's user data creates /var/lib/etcd-appliance owned by 10001).
# The data directory's parent also holds <data-dir>.previous, so it belongs to that user too.
RUN groupadd --system --gid 10001 etcd \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/etcd-appliance \
        --shell /usr/sbin/nologin etcd \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/etcd-appliance

WORKDIR /opt/etcd-appliance
# Exactly the versions and files of requirements.lock (compiled from requirements.txt's ranges,
# its header says how): pip refuses a file whose SHA-256 is not listed there, and with --no-deps
# installs nothing the lock does not name; pip check then fails the build on a lock that misses
# a dependency.
COPY requirements.lock ./
RUN pip install --no-cache-dir --no-deps --require-hashes -r requirements.lock \
    && pip check
COPY --from=etcd-release /out/ /
# The code stays root's: the agent cannot change what it runs. Compiled now, since the agent
# cannot write __pycache__ here.
COPY etcd.py ./
COPY appliance/ appliance/
RUN python -m compileall -q etcd.py appliance

USER 10001:10001
# Agent status, etcd client, peer and metrics ports (appliance/commands/settings.py's defaults).
EXPOSE 2378 2379 2380 2381
# The command is the argument: `docker run IMAGE` and the templates' `docker run IMAGE run` both
# run the agent; `docker run IMAGE status …` any other command.
ENTRYPOINT ["python", "etcd.py"]
CMD ["run"]
