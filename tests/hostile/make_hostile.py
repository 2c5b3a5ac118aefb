#!/usr/bin/env python3
"""Writes small crafted files, one per class of hostile input found in issue 12, into a folder.

    python3 tests/hostile/make_hostile.py OUT_DIR

Each file is a few hundred bytes (the shared-buffer models are about 1 MiB: one buffer, referenced
thousands of times) and is built here from the TFLite schema's field numbers with the plain
`flatbuffers` builder, so tables, vectors and buffers can be shared exactly as a hostile file would
share them. web/test/hostile.test.mjs runs the CLI on every file and states, per case, the
command and what the CLI must answer.

The files are generated at test time rather than committed: the generator documents each case
better than a binary does, and the shared-buffer models would put 2 MiB of zeros in the repository.
"""

import json
import struct
import sys
from pathlib import Path

import flatbuffers
import numpy as np

# TFLite schema (crate/schema/tflite.fbs): tensor types, operator codes, options unions.
FLOAT32, INT32, INT8 = 0, 2, 9
ADD, CONV_2D, DEQUANTIZE, RELU, RESHAPE, PAD, TRANSPOSE, SQUEEZE = 0, 3, 6, 19, 22, 34, 39, 43
CONV2D_OPTIONS = 1  # BuiltinOptions union index of Conv2DOptions
SAME = 0


class Writer:
    """A TFLite model built bottom-up with flatbuffers; offsets can be referenced many times."""

    def __init__(self):
        self.b = flatbuffers.Builder(1024)

    def vec(self, kind, values):
        """A vector of 'i32', 'i64', 'f32', 'u8' values or 'off' (table offsets)."""
        b = self.b
        if kind == "u8":
            return b.CreateByteVector(bytes(values))
        size, prepend = {
            "i32": (4, b.PrependInt32),
            "i64": (8, b.PrependInt64),
            "f32": (4, b.PrependFloat32),
            "off": (4, b.PrependUOffsetTRelative),
        }[kind]
        b.StartVector(size, len(values), size)
        for v in reversed(values):
            prepend(v)
        return b.EndVector()

    def table(self, fields):
        """A table from (slot, kind, value) fields; kinds: off, i8, u8, i32, u32, u64, bool."""
        b = self.b
        b.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
        for slot, kind, value in fields:
            if kind == "off":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            else:
                prepend = {
                    "i8": b.PrependInt8Slot,
                    "u8": b.PrependUint8Slot,
                    "i32": b.PrependInt32Slot,
                    "u32": b.PrependUint32Slot,
                    "u64": b.PrependUint64Slot,
                    "bool": b.PrependBoolSlot,
                }[kind]
                prepend(slot, value, None)  # None: never equal to the value, so always written
        return b.EndObject()

    def string(self, s):
        return self.b.CreateString(s)

    def buffer(self, data=None):
        return self.table([] if data is None else [(0, "off", self.vec("u8", data))])

    def tensor(self, name, shape, dtype=FLOAT32, buffer=0, quant=None):
        fields = [(0, "off", self.vec("i32", shape)), (1, "i8", dtype), (2, "u32", buffer), (3, "off", self.string(name))]
        if quant is not None:
            fields.append((4, "off", quant))
        return self.table(fields)

    def per_channel(self, scales, axis):
        return self.table([
            (2, "off", self.vec("f32", scales)),
            (3, "off", self.vec("i64", [0] * len(scales))),
            (6, "i32", axis),
        ])

    def operator(self, opcode, inputs, outputs, options=None):
        fields = [(0, "u32", opcode), (1, "off", self.vec("i32", inputs)), (2, "off", self.vec("i32", outputs))]
        if options is not None:
            kind, table = options
            fields += [(3, "u8", kind), (4, "off", table)]
        return self.table(fields)

    def model(self, codes, tensors, operators, inputs, outputs, buffers, metadata=None):
        """Finishes a one-subgraph model. `codes` are builtin codes; the lists hold offsets."""
        code_tables = [self.table([(0, "i8", min(c, 127)), (2, "i32", 1), (3, "i32", c)]) for c in codes]
        subgraph = self.table([
            (0, "off", self.vec("off", tensors)),
            (1, "off", self.vec("i32", inputs)),
            (2, "off", self.vec("i32", outputs)),
            (3, "off", self.vec("off", operators)),
            (4, "off", self.string("main")),
        ])
        fields = [
            (0, "u32", 3),
            (1, "off", self.vec("off", code_tables)),
            (2, "off", self.vec("off", [subgraph])),
            (4, "off", self.vec("off", buffers)),
        ]
        if metadata is not None:
            fields.append((6, "off", self.vec("off", metadata)))
        self.b.Finish(self.table(fields), file_identifier=b"TFL3")
        return bytes(self.b.Output())


def f32(values):
    return struct.pack(f"<{len(values)}f", *values)


def i32(values):
    return struct.pack(f"<{len(values)}i", *values)


def huge_input():
    """RELU of an input declared with 2^31 - 1 floats (8 GiB): a few hundred bytes of file."""
    w = Writer()
    buffers = [w.buffer()]
    t = [w.tensor("x", [1, 2**31 - 1]), w.tensor("y", [1, 2**31 - 1])]
    return w.model([RELU], t, [w.operator(0, [0], [1])], [0], [1], buffers)


def broadcast_declared_scalar(n=65536):
    """x [n, 1] + TRANSPOSE(x) [1, n] broadcasts to [n, n] (16 GiB), declared [] (unknown)."""
    w = Writer()
    buffers = [w.buffer(), w.buffer(i32([1, 0]))]
    t = [w.tensor("x", [n, 1]), w.tensor("perm", [2], INT32, 1), w.tensor("xt", [1, n]), w.tensor("sum", [])]
    ops = [w.operator(1, [0, 1], [2]), w.operator(0, [0, 2], [3])]
    return w.model([ADD, TRANSPOSE], t, ops, [0], [3], buffers)


def pad_rank8():
    """PAD of 2^24 on each side of every dimension of a rank-8 tensor: (2^25 + 1)^8 elements."""
    w = Writer()
    buffers = [w.buffer(), w.buffer(i32([2**24] * 16))]
    t = [w.tensor("x", [1] * 8), w.tensor("paddings", [8, 2], INT32, 1), w.tensor("y", [])]
    return w.model([PAD], t, [w.operator(0, [0, 1], [2])], [0], [2], buffers)


def conv_dilation():
    """A 3x3 CONV_2D with dilation 40000 on a 3x3 input, SAME padding: a 25 GB padded input."""
    w = Writer()
    buffers = [w.buffer(), w.buffer(f32([0.5] * 9))]
    t = [w.tensor("x", [1, 3, 3, 1]), w.tensor("w", [1, 3, 3, 1], FLOAT32, 1), w.tensor("y", [1, 3, 3, 1])]
    options = w.table([(0, "i8", SAME), (1, "i32", 1), (2, "i32", 1), (4, "i32", 40000), (5, "i32", 40000)])
    op = w.operator(0, [0, 1, -1], [2], (CONV2D_OPTIONS, options))
    return w.model([CONV_2D], t, [op], [0], [2], buffers)


def per_channel_through(op_code):
    """Per-channel int8 weights through RESHAPE or SQUEEZE to [4], where their quantization axis no
    longer exists (the output declares no parameters, so the input's are carried), then DEQUANTIZE
    and ADD to the input."""
    w = Writer()
    buffers = [w.buffer(), w.buffer(bytes([1, 2, 3, 4])), w.buffer(i32([4]))]
    shape, axis = ([2, 2], 1) if op_code == RESHAPE else ([1, 1, 1, 4], 3)
    quant = w.per_channel([0.5] * shape[axis], axis)
    t = [
        w.tensor("x", [1, 4]),
        w.tensor("w", shape, INT8, 1, quant),
        w.tensor("w_flat", [4], INT8),
        w.tensor("w_float", [4]),
        w.tensor("y", [1, 4]),
        w.tensor("new_shape", [1], INT32, 2),
    ]
    flat_inputs = [1, 5] if op_code == RESHAPE else [1]
    ops = [w.operator(0, flat_inputs, [2]), w.operator(1, [2], [3]), w.operator(2, [0, 3], [4])]
    return w.model([op_code, DEQUANTIZE, ADD], t, ops, [0], [4], buffers)


def relu(outputs=True):
    """RELU of a [1, 4] input; with `outputs=False` the graph has no outputs."""
    w = Writer()
    t = [w.tensor("x", [1, 4]), w.tensor("y", [1, 4])]
    return w.model([RELU], t, [w.operator(0, [0], [1])], [0], [1] if outputs else [], [w.buffer()])


def pad_wider():
    """PAD of a [1, 4] input by one column: the same input as relu(), an output one value wider."""
    w = Writer()
    buffers = [w.buffer(), w.buffer(i32([0, 0, 0, 1]))]
    t = [w.tensor("x", [1, 4]), w.tensor("p", [2, 2], INT32, 1), w.tensor("y", [1, 5])]
    return w.model([PAD], t, [w.operator(0, [0, 1], [2])], [0], [2], buffers)


def two_outputs():
    """RELU and PAD of one [1, 4] input: two outputs, for `run` writing all outputs or none."""
    w = Writer()
    buffers = [w.buffer(), w.buffer(i32([0, 0, 0, 1]))]
    t = [w.tensor("x", [1, 4]), w.tensor("r", [1, 4]), w.tensor("p", [2, 2], INT32, 1), w.tensor("y", [1, 5])]
    ops = [w.operator(0, [0], [1]), w.operator(1, [0, 2], [3])]
    return w.model([RELU, PAD], t, ops, [0], [1, 3], buffers)


def shared_buffer(entries, metadata=False, size=1 << 20):
    """One 1 MiB buffer table that `entries` entries of `buffers` point at, used by `entries` tensors
    (one shared tensor table) or, with `metadata`, named by `entries` metadata entries."""
    w = Writer()
    shared = w.buffer(bytes(size))
    buffers = [w.buffer()] + [shared] * entries
    if metadata:
        tensors = [w.tensor("w", [size // 4], FLOAT32, 1)]
        entry = w.table([(0, "off", w.string("m")), (1, "u32", 1)])
        return w.model([], tensors, [], [], [0], buffers, [entry] * entries)
    tensors = [w.tensor("w", [size // 4], FLOAT32, 1)] * entries
    return w.model([], tensors, [], [], [0], buffers)


def npy(header, data=b"", version=1):
    """A .npy file with this header text (padded with spaces to `header` as given) and data."""
    h = header.encode()
    prefix = b"\x93NUMPY" + bytes([version, 0])
    length = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return prefix + length + h + data


def npy_with_length(length_field, version):
    """A .npy file whose header length field says `length_field` bytes, far past its end."""
    fmt = "<H" if version == 1 else "<I"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(fmt, length_field) + b"{'descr': '<f4'"


def save_array(path, array):
    np.save(path, np.ascontiguousarray(array, dtype=np.float32))


def write_all(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    models = {
        "huge_input.tflite": huge_input(),
        "broadcast_declared_scalar.tflite": broadcast_declared_scalar(),
        "pad_rank8.tflite": pad_rank8(),
        "conv_dilation.tflite": conv_dilation(),
        "per_channel_reshape.tflite": per_channel_through(RESHAPE),
        "per_channel_squeeze.tflite": per_channel_through(SQUEEZE),
        "relu.tflite": relu(),
        "no_outputs.tflite": relu(outputs=False),
        "pad_wider.tflite": pad_wider(),
        "two_outputs.tflite": two_outputs(),
        "shared_buffer_1024.tflite": shared_buffer(1024),
        "shared_buffer_8192.tflite": shared_buffer(8192),
        "shared_metadata_1024.tflite": shared_buffer(1024, metadata=True),
    }
    for name, data in models.items():
        (out / name).write_bytes(data)
    save_array(out / "x_1x4.npy", np.arange(12).reshape(3, 4) - 5.5)
    save_array(out / "x_65536.npy", np.zeros((1, 65536, 1)))
    save_array(out / "x_rank8.npy", np.ones([1] * 8))
    save_array(out / "x_3x3.npy", np.ones((1, 3, 3, 1)))
    # 2^31 floats declared in a 77-byte file: 2^33 bytes wrap to 0 in a 32-bit usize.
    two_g = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483648,), }\n")
    assert len(two_g) == 77
    (out / "npy_2g_floats.npy").write_bytes(two_g)
    # A long header is legal (format 2.0 stores its length in 32 bits): 100,000 bytes of padding.
    body = np.arange(8, dtype="<f4").reshape(2, 4).tobytes()
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }"
    pad = 100_000 - len(text)
    (out / "npy_long_header.npy").write_bytes(npy(text + " " * (pad - 1) + "\n", body, version=2))
    (out / "npy_header_past_end_v1.npy").write_bytes(npy_with_length(0xFFFF, 1))
    (out / "npy_header_past_end_v2.npy").write_bytes(npy_with_length(0xFFFFFFF0, 2))
    return sorted(p.name for p in out.iterdir())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    names = write_all(Path(sys.argv[1]))
    print(json.dumps(names))
