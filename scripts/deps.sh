#!/usr/bin/env bash
# Installs the Debian packages bastion's tests and demo use, when missing:
# the OpenSSH client (and server, for the side-by-side benchmarks),
# PostgreSQL, asciinema, tmux (interactive e2e tests) and Chromium (web page
# tests). Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ssh || need+=(openssh-client)
have ssh-keygen || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
have tmux || need+=(tmux)
have asciinema || need+=(asciinema)
have script || need+=(bsdutils)
have vim.tiny || need+=(vim-tiny) # the PTY test runs vim.tiny itself, not whichever vim is there
have less || need+=(less)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
have pgbench || ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || need+=(postgresql-contrib)
have chromium || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
