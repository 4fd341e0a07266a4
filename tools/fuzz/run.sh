#!/usr/bin/env bash
# Coverage-guided fuzzing of the protocol decoders with libFuzzer (+ AddressSanitizer):
#   tools/fuzz/run.sh [seconds]        default 300; the corpus grows in .build/fuzz/corpus
# The seeded fuzzer in Tests/ProtocolTests runs in every `swift test`; this one searches deeper.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.build/fuzz
mkdir -p "$out/corpus"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name FuzzProtocol \
    Sources/Protocol/*.swift tools/fuzz/FuzzRequestDecoder.swift -o "$out/fuzz-protocol"
# Seeds: a valid request of each kind, framed as the fuzzer's input format expects.
python3 - "$out/corpus" <<'PY'
import sys, os
headers = [b'{"cmd":"status","id":1}', b'{"cmd":"knn","by":"item","item":4,"k":3}', b'{"cmd":"get","ids":[1,2]}',
           b'{"cmd":"ingest","images":[{"format":"raw","width":1,"height":1,"channels":3}]}']
for n, h in enumerate(headers):
    body = bytes([len(h)]) + h + (bytes([3, 1, 2, 3]) if b"ingest" in h else b"")
    if len(body) % 2: body += b"\x00"
    open(os.path.join(sys.argv[1], f"seed{n}"), "wb").write(body)
PY
"$out/fuzz-protocol" -max_total_time="${1:-300}" -max_len=4096 "$out/corpus"
