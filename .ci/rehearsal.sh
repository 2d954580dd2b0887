#!/usr/bin/env bash
# Debian's haproxy for the multi-host rehearsal (tests/rehearsal, bench/rehearsal.py): the rehearsal runs its own
# haproxy process with its own config in a network namespace, never the system service. Installs it with apt
# when it is missing; without root the rehearsal test skips anyway (it makes network namespaces), so nothing to do.
set -euo pipefail
command -v haproxy >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "haproxy is missing (the rehearsal needs root and skips without it): 'apt-get install haproxy' as root" >&2
  exit 0
fi
echo "installing haproxy (Debian) for the rehearsal"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null
command -v haproxy >/dev/null
