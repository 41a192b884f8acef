#!/usr/bin/env bash
# Installs GStreamer's RTSP server from Debian when it is missing, for the live tests: they stream
# from and publish to a real server (tests/live/rtsp_server.py, run by the system python3), not a
# mock. Best effort: without root (or passwordless sudo) it says so and the live tests skip with
# that reason, unless STREAMDEID_REQUIRE_RTSP=1 (CI), where they fail.
# About 20-30 s on a fresh machine, ~0.1 s once present. No plugins-bad: it would add GTK and ~80
# libraries, and the server needs nothing from it.
set -uo pipefail
PACKAGES=(gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good python3-gi)
missing=()
for package in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
((${#missing[@]})) || exit 0
if ! command -v apt-get >/dev/null; then
    echo "note: no apt-get here; live RTSP tests will skip (needs: ${PACKAGES[*]})" >&2
    exit 0
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if sudo -n true 2>/dev/null; then sudo=(sudo -n); else
        echo "note: not root; live RTSP tests will skip unless you install: ${missing[*]}" >&2
        exit 0
    fi
fi
echo "installing ${missing[*]} for the live RTSP tests" >&2
"${sudo[@]}" apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    echo "note: installing ${missing[*]} failed; live RTSP tests will skip" >&2
exit 0
