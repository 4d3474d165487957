#!/usr/bin/env bash
# Install the Debian packages the tests need that are missing: the real IRC clients
# (irssi, weechat-headless with the plugins that hold its fifo, tmux to drive irssi),
# Chromium and its driver for the browser test of trio-chat-web (tests/test_web.py),
# plus any packages named as arguments. Runs as root with no stdin; exits non-zero,
# saying why, when apt fails.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(irssi weechat-headless weechat-plugins tmux chromium chromium-driver "$@")

missing=()
for package in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" != installed ]; then
    missing+=("$package")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "apt-packages: all present: ${packages[*]}"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n -E)
  else
    echo "apt-packages: missing ${missing[*]}, and not root (nor passwordless sudo) to install them" >&2
    exit 1
  fi
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
run_apt() {
  # apt's output only when it fails: a CI log stays short
  if ! "${sudo[@]}" "$@" </dev/null >"$log" 2>&1; then
    echo "apt-packages: '$*' failed:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}
echo "apt-packages: installing ${missing[*]}"
run_apt apt-get update -q
run_apt apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=120 "${missing[@]}"

still=()
for package in "${missing[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" != installed ]; then
    still+=("$package")
  fi
done
if [ "${#still[@]}" -ne 0 ]; then
  echo "apt-packages: still not installed after apt-get: ${still[*]}" >&2
  exit 1
fi
echo "apt-packages: installed ${missing[*]}"
