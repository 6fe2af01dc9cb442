#!/usr/bin/env bash
# Downloads the project's Maven dependencies and plugins into the local repository, so later builds
# (and the Docker layer after this step) work from the cache.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mvn -B -ntp -q dependency:resolve dependency:resolve-plugins
