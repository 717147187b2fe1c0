#!/usr/bin/env bash
# Regenerates generated/ from protos/. The output is committed; CI runs this and fails on any difference.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
rm -rf generated/communities
mkdir -p generated
"$PY" -m grpc_tools.protoc -I protos \
  --python_out=generated --pyi_out=generated --grpc_python_out=generated \
  $(find protos -name '*.proto' | sort)
