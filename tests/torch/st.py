"""Minimal safetensors read/write for the dev-only fixture scripts (torch 1.13 has no safetensors).

Same format as formats/safetensors.ts: u64 header length, JSON header, raw little-endian bytes.
"""
import json
import struct

import torch

_DT = {torch.float32: ("F32", 4), torch.float64: ("F64", 8), torch.int32: ("I32", 4), torch.int64: ("I64", 8)}
_FROM = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64}


def save(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        dt, _ = _DT[t.dtype]
        b = t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":"))
    h += " " * ((8 - len(h.encode()) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h.encode())))
        f.write(h.encode())
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[8 + n + a:8 + n + b]), dtype=_FROM[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out
