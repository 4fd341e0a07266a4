#!/usr/bin/env bash
# Installs glfd as a systemd service: release binaries to /usr/local/bin, the unit to
# /etc/systemd/system, the default configuration to /etc/glfd/glfd.toml (kept if present).
#   sudo tools/install.sh            then: systemctl enable --now glfd
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${PREFIX:-/usr/local}"
swift build -c release --product glfd
swift build -c release --product glfctl
install -D -m 0755 .build/release/glfd "$prefix/bin/glfd"
install -D -m 0755 .build/release/glfctl "$prefix/bin/glfctl"
install -D -m 0644 systemd/glfd.service /etc/systemd/system/glfd.service
install -d -m 0755 /etc/glfd
[ -e /etc/glfd/glfd.toml ] || install -m 0644 systemd/glfd.toml /etc/glfd/glfd.toml
install -D -m 0644 README.md "$prefix/share/doc/glfd/README.md"
install -D -m 0644 protocol/PROTOCOL.md "$prefix/share/doc/glfd/PROTOCOL.md"
systemctl daemon-reload 2>/dev/null || true
echo "installed; start with: systemctl enable --now glfd"
