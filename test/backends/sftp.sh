#!/usr/bin/env bash
# SFTP and FTP test backends for Ferry: OpenSSH's sshd and vsftpd from
# Debian's packages, and the local account both log in as. The Go helpers
# in test/backends/sftpsrv and test/backends/ftpsrv write their own
# configuration, start the servers on 127.0.0.1 on free ports with data in
# temp dirs, and stop them; this script only installs.
#
#   test/backends/sftp.sh install   install what is missing (idempotent, root)
#
# The account (ferrytest, see TEST_USER) gets a random password from the
# helpers at each start; it has no other use.
set -euo pipefail

TEST_USER=ferrytest

cmd=${1:-install}
case "$cmd" in
  install)
    if [ "$(id -u)" != 0 ]; then
      echo "sftp.sh: not root: cannot install sshd/vsftpd or add $TEST_USER; the SFTP/FTP tests will skip" >&2
      exit 0
    fi
    need=()
    [ -x /usr/sbin/sshd ] || need+=(openssh-server)
    [ -x /usr/sbin/vsftpd ] || need+=(vsftpd)
    command -v sftp >/dev/null 2>&1 || need+=(openssh-client)
    command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    if [ ${#need[@]} -gt 0 ]; then
      echo "installing: ${need[*]}"
      # Debian would start sshd and vsftpd on every interface: policy-rc.d
      # exit 101 stops that (the tests start their own on 127.0.0.1).
      if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
      fi
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    mkdir -p /run/sshd
    if ! id "$TEST_USER" >/dev/null 2>&1; then
      # A real shell: vsftpd's PAM stack (pam_shells) refuses others.
      useradd --create-home --shell /bin/bash "$TEST_USER"
    fi
    # vsftpd's PAM stack refuses users listed in /etc/ftpusers.
    if [ -f /etc/ftpusers ] && grep -qx "$TEST_USER" /etc/ftpusers; then
      sed -i "/^$TEST_USER\$/d" /etc/ftpusers
    fi
    /usr/sbin/sshd -V 2>&1 | head -1 || true
    /usr/sbin/vsftpd -v 0>&- 2>&1 | head -1 || true
    ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
