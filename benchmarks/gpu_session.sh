#!/usr/bin/env bash
# On a lent GPU machine, from the repository root, with .whl/ carried (tools/gpu_wheels.sh fills
# it): the wheels and dlspec into /tmp/site, then benchmarks/gpu_session.py writing into $OUT.
#   bash benchmarks/gpu_session.sh [--budget 540]
set -euo pipefail
site=${GPU_SITE:-/tmp/site}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$site" .whl/*.whl
# dlspec as a wheel lays it out (grammar and templates inside the package), without a build
mkdir -p "$site/bin" && rm -rf "$site/dlspec" && cp -r dlspec "$site/dlspec"
cp -r grammar "$site/dlspec/grammar" && cp -r templates "$site/dlspec/templates"
printf '#!/usr/bin/env python3\nimport sys\nfrom dlspec.cli import main\nsys.exit(main())\n' \
  >"$site/bin/dlspec"
chmod +x "$site/bin/dlspec"
export PYTHONPATH="$site" PATH="$site/bin:$PATH" PYTHONUNBUFFERED=1
exec python3 benchmarks/gpu_session.py --out "${OUT:-out/gpu}" "$@"
