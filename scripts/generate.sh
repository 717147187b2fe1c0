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
# The same files with their comments (source info) and imports, for server reflection: `grpcurl describe` then
# shows what each field means. (The Python modules above carry no comments.)
"$PY" -m grpc_tools.protoc -I protos --include_imports --include_source_info \
  --descriptor_set_out=generated/communities/v1/descriptors.binpb \
  $(find protos -name '*.proto' | sort)
