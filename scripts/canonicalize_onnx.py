#!/usr/bin/env python3
"""Make a tflite2onnx output byte-reproducible.

tflite2onnx writes the graph's initializers and value_info entries in an order that changes
from run to run; the tensors themselves are identical. Ordering both lists by tensor name gives
the same bytes every time, which lets scripts/fetch-models.sh verify a fixed sha256.

usage: canonicalize_onnx.py IN.onnx OUT.onnx
"""
import sys

import onnx


def main(src: str, dst: str) -> None:
    model = onnx.load(src)
    graph = model.graph
    for name in ("initializer", "value_info"):
        entries = list(getattr(graph, name))
        entries.sort(key=lambda entry: entry.name)
        container = getattr(graph, name)
        del container[:]
        container.extend(entries)
    onnx.checker.check_model(model)
    onnx.save(model, dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
