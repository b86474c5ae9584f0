#!/usr/bin/env bash
# Remake the README's pictures with the project's own commands (run from the repository root):
#   docs/chip.png    31.5 x 15.8 µm at the lower-left corner of the sample's first engine, drawn by
#                    `weightfab render` (KLayout's renderer): bit cells, programmed sites in yellow
#   docs/report.png  the top of the sample's HTML report (compile --html) in headless Chromium
# Both are reduced to a 256-colour palette to stay small.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
weightfab compile samples/digits_mlp.onnx -o "$out/chip.gds" --weights int4 --merge-budget 0.5 \
  --data samples/digits_mlp.test.npz --report "$out/report.json" --html "$out/report.html"
window=$(python3 -c "
import sys
from weightfab.signoff.readback import read_bits
from weightfab.tech.pdk import load_pdk
a, _, _, dbu = read_bits(sys.argv[1], load_pdk('sky130'))
x, y = a[0].bbox[0] * dbu, a[0].bbox[1] * dbu
print(f'{x - 1.5:.3f},{y - 0.8:.3f},{x + 30:.3f},{y + 15:.3f}')" "$out/chip.gds")
weightfab render "$out/chip.gds" -o "$out/chip.png" --window "$window" --width 1200
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$out/chrome" \
  --window-size=1100,1500 --screenshot="$out/report.png" "file://$out/report.html" 2>/dev/null
python3 - "$out" <<'PY'
import sys
from PIL import Image
src = sys.argv[1]
for name in ("chip.png", "report.png"):
    Image.open(f"{src}/{name}").convert("RGB").quantize(256).save(f"docs/{name}", optimize=True)
PY
ls -l docs/chip.png docs/report.png
