#!/usr/bin/env bash
# Installs what a jconv image stage needs from the distribution's packages, skipping what is there.
#   docker/install-deps.sh build     JDK 17, Maven, g++ (nvcc comes with the CUDA devel image)
#   docker/install-deps.sh runtime   a headless JRE 17 and the unprivileged user `jconv`
#   --dry-run (after the stage)      only print what would be done (CI runs it so)
set -euo pipefail
stage="${1:?usage: install-deps.sh build|runtime [--dry-run]}"
dry=0
[ "${2:-}" = "--dry-run" ] && dry=1
run() { if [ "$dry" = 1 ]; then echo "would run: $*"; else "$@"; fi; }
packages=()
case "$stage" in
  build)
    command -v javac >/dev/null || packages+=(openjdk-17-jdk-headless)
    command -v mvn >/dev/null || packages+=(maven)
    command -v g++ >/dev/null || packages+=(g++)
    ;;
  runtime)
    command -v java >/dev/null || packages+=(openjdk-17-jre-headless)
    ;;
  *) echo "install-deps: unknown stage '$stage' (build or runtime)" >&2; exit 2 ;;
esac
if [ ${#packages[@]} -gt 0 ]; then
  run apt-get update
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
  run rm -rf /var/lib/apt/lists/*
else
  echo "install-deps: $stage packages already present"
fi
if [ "$stage" = runtime ] && ! id jconv >/dev/null 2>&1; then
  run useradd --create-home --shell /usr/sbin/nologin jconv
fi
