#!/usr/bin/env bash
# The tools that consume what weightfab writes, from Debian's packages: ngspice (SPICE reads with the
# foundry models), iverilog (the Verilog model), yosys and opensta (Liberty), chromium (the HTML report).
# Installs only what is missing; needs root (or sudo).
set -euo pipefail
need=()
for pair in ngspice:ngspice iverilog:iverilog yosys:yosys sta:opensta chromium:chromium; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
