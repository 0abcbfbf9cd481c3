#!/usr/bin/env bash
# What the test suite needs, installed when missing: the npm packages of the lockfile (among them
# Node 24, which npm scripts run on), and the real programs some tests talk to — Debian's
# Prometheus and promtool (metrics and PromQL), etcd (the control plane's shared store), openssl and
# curl (mTLS clients), Chromium (the HTML report and the console in a browser). Run by `npm test`
# before mocha, and by .ci/run. Idempotent and quick when everything is there. Where it cannot
# install (not root, no apt-get) it stops with one line.
set -euo pipefail
cd "$(dirname "$0")/.."

# npm packages: installed when node_modules is missing or older than the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

missing=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl ca-certificates)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium fonts-liberation)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "tests need Debian packages ${missing[*]} (or the same programs on PATH); this machine has no apt-get: install them and run npm test again" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
    echo "tests need Debian packages: run  sudo apt-get install -y --no-install-recommends ${missing[*]}  then npm test again" >&2
    exit 1
  fi
fi
echo "installing what the tests need: ${missing[*]} (apt-get)" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Tests start their own etcd on free ports: the package's system service is not wanted.
if [[ " ${missing[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null; then
  "${sudo[@]}" systemctl disable --now etcd >/dev/null 2>&1 || true
fi
