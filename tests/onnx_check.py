"""Dev/test helper: runs onnx.checker.check_model(path, full_check=True) on each file given.

Usage: /usr/bin/python3 tests/onnx_check.py <model.onnx> [...]
Prints "ok <path>" per file; exits 1 (message on stderr) on the first file that fails, 2 on bad usage.
full_check also runs strict shape inference over the default-domain ops; contrib-domain ops
(com.microsoft) have no schema in onnx and are skipped by the checker, as onnx documents.
"""
import sys

import onnx


def main(paths):
    if not paths:
        print("usage: onnx_check.py <model.onnx> [...]", file=sys.stderr)
        return 2
    for path in paths:
        try:
            # Passing the path (not a loaded proto) lets the checker handle models over 2 GB too.
            onnx.checker.check_model(path, full_check=True)
        except Exception as e:  # noqa: BLE001 - any failure is reported with the file's name
            print(f"ONNX check failed for \"{path}\": {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        print(f"ok {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
