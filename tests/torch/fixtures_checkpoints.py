"""Writes the PyTorch checkpoint fixtures that formats/torch_bin_test.ts and formats/pickle_test.ts read:
tests/fixtures/checkpoints/<case>.bin written by torch.save, each with a <case>.safetensors twin
holding the same values as torch sees them (contiguous; F16/BF16 widened to F32 exactly, U8/BOOL as I32)
and, in metadata "dtypes", the dtype each tensor was stored as.
Run: /usr/bin/python3 tests/torch/fixtures_checkpoints.py
"""
import collections
import json
import os
import pickle
import sys
import zipfile

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
import st  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "checkpoints")
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
NUMPY = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}
TWIN = {torch.float16: torch.float32, torch.bfloat16: torch.float32, torch.uint8: torch.int32,
        torch.bool: torch.int32}


def twin(path, tensors):
    """The safetensors twin: contiguous copies, widened where st.py has no dtype."""
    dtypes = {k: DTYPES[t.dtype] for k, t in tensors.items()}
    flat = {k: t.detach().to(TWIN.get(t.dtype, t.dtype)).contiguous() for k, t in tensors.items()}
    st.save(path, flat, {"dtypes": json.dumps(dtypes)})


def mixed_tensors():
    """Every dtype, non-contiguous views, storage offsets, a shared storage and a tied tensor."""
    g = torch.Generator().manual_seed(7)
    base = torch.randn(5, 6, generator=g)
    tied = torch.randn(3, 4, generator=g)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(3, 5, generator=g)
    sd["f16"] = torch.randn(4, 3, generator=g).half()
    sd["bf16"] = torch.randn(2, 7, generator=g).bfloat16()
    sd["f64"] = torch.randn(3, 2, generator=g, dtype=torch.float64)
    sd["i64"] = torch.tensor([0, -1, 2**31, -(2**40) - 3, 2**62 + 5, 7], dtype=torch.int64)
    sd["i32"] = torch.tensor([[1, -2], [2**31 - 1, -(2**31)]], dtype=torch.int32)
    sd["u8"] = torch.tensor([0, 1, 255, 128], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["transposed"] = torch.randn(4, 6, generator=g).t()  # (6, 4), stride (1, 6)
    sd["base"] = base  # shares its storage with the next three
    sd["window"] = base[1:4, 2:5]  # offset 8, stride (6, 1)
    sd["row"] = base[3]  # offset 18
    sd["every_other_column"] = base[:, ::2]  # stride (6, 2)
    sd["tied_a"] = tied
    sd["tied_b"] = tied  # the same tensor object: pickled once, then a memo reference
    sd["expanded"] = torch.randn(3, 1, generator=g).expand(3, 4)  # stride (1, 0)
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = nn.Parameter(torch.randn(2, 2, generator=g))  # pickled via _rebuild_parameter
    return sd


class Embeddings(nn.Module):
    def __init__(self, vocab, positions, hidden):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.token_type_embeddings = nn.Embedding(2, hidden)
        self.LayerNorm = nn.LayerNorm(hidden)
        self.register_buffer("position_ids", torch.arange(positions).expand((1, -1)))


class SelfAttention(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.query = nn.Linear(hidden, hidden)


class Attention(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.self = SelfAttention(hidden)


class Layer(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.attention = Attention(hidden)


class Encoder(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.layer = nn.ModuleList([Layer(hidden)])


class Pooler(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)


class Bert(nn.Module):
    def __init__(self, vocab=20, positions=16, hidden=8):
        super().__init__()
        self.embeddings = Embeddings(vocab, positions, hidden)
        self.encoder = Encoder(hidden)
        self.pooler = Pooler(hidden)


class TinyBertClassifier(nn.Module):
    """Hugging Face parameter names (a slice of BertForSequenceClassification)."""

    def __init__(self):
        super().__init__()
        self.bert = Bert()
        self.classifier = nn.Linear(8, 2)


def load_twin(path):
    """Reads a twin back independently of st.load (torch.frombuffer rejects zero-element tensors)."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k != "__metadata__":
            a, b = v["data_offsets"]
            arr = np.frombuffer(data[8 + n + a:8 + n + b], dtype=NUMPY[v["dtype"]]).reshape(v["shape"])
            out[k] = torch.from_numpy(arr.copy())
    return out


def deflated_copy(src, dst):
    """The same records, DEFLATE-compressed by Python's zipfile (a second, independent zip writer)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))


def plain_values():
    """Python values covering every opcode the unpickler knows for plain data, with a shared list."""
    shared = [1, "x"]
    return {
        "none": None, "bools": (True, False),
        "ints": [0, 1, 255, 256, 65535, 65536, -1, -(2**31), 2**31 - 1, 2**31, 2**53 + 1, -(2**63), 2**64, -(2**70)],
        "floats": [0.5, -0.0, 1e300, -2.5e-310, 3.141592653589793],
        "strings": ["", "ascii", "h\u00e9llo \u2713 \U0001f600", "x" * 300],
        "bytes": b"\x00\x01\xff",
        "tuples": ((), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)),
        "nested": {"a": [shared, shared], 3: {"deep": [[[]]]}},
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
    }


def tagged(v):
    """JSON that keeps what JSON loses: int vs float, tuple vs list, non-string keys."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return {"int": str(v)}
    if isinstance(v, float):
        return {"float": repr(v)}
    if isinstance(v, bytes):
        return {"bytes": list(v)}
    if isinstance(v, tuple):
        return {"tuple": [tagged(x) for x in v]}
    if isinstance(v, list):
        return {"list": [tagged(x) for x in v]}
    return {"dict": [[tagged(k), tagged(x)] for k, x in v.items()]}


def main():
    os.makedirs(OUT, exist_ok=True)
    path = lambda name: os.path.join(OUT, name)  # noqa: E731

    mixed = mixed_tensors()
    torch.save(mixed, path("tensors.bin"))
    torch.save(mixed, path("tensors_p4.bin"), pickle_protocol=4)
    torch.save(mixed, path("tensors_p5.bin"), pickle_protocol=5)
    torch.save(mixed, path("tensors_legacy.bin"), _use_new_zipfile_serialization=False)
    deflated_copy(path("tensors.bin"), path("tensors_deflate.bin"))
    twin(path("tensors.safetensors"), mixed)

    torch.manual_seed(3)
    model = TinyBertClassifier()
    sd = model.state_dict()  # an OrderedDict carrying _metadata (pickled with BUILD)
    torch.save(sd, path("bert_tiny.bin"))
    twin(path("bert_tiny.safetensors"), sd)

    expected = {}
    for protocol in (2, 4, 5):
        values = plain_values()
        if protocol == 2:
            del values["bytes"]  # protocol 2 pickles bytes through the global _codecs.encode
        with open(path(f"values_p{protocol}.pkl"), "wb") as f:
            pickle.dump(values, f, protocol=protocol)
        expected[protocol] = tagged(values)
    with open(path("values.json"), "w") as f:
        json.dump(expected, f)

    # The writer's own reader must agree with the twins.
    for name, ref in [("tensors", mixed), ("bert_tiny", sd)]:
        loaded = load_twin(path(f"{name}.safetensors"))
        for variant in ["", "_p4", "_p5", "_legacy", "_deflate"] if name == "tensors" else [""]:
            back = torch.load(path(f"{name}{variant}.bin"))
            assert list(back) == list(ref), variant
            for k, t in back.items():
                assert torch.equal(t.to(loaded[k].dtype), loaded[k]), (variant, k)
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(path(f)))


if __name__ == "__main__":
    main()
