"""One-operator int8 TFLite models with chosen quantization parameters, covering every input code:
the sweeps of check_tflm.py. Written with the flatbuffers object API of the schema bundled with
the `tflite-micro` package."""
import struct

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

CODES = np.arange(-128, 128, dtype=np.int8)


def f32_from_bits(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def _tensor(name, shape, scale, zp, buffer):
    t = fb.TensorT()
    t.name, t.shape, t.type, t.buffer = name, list(shape), fb.TensorType.INT8, buffer
    q = fb.QuantizationParametersT()
    q.scale, q.zeroPoint = [float(scale)], [int(zp)]
    t.quantization = q
    return t


def _model(op_code, tensors, constants, inputs, output, options=None, options_type=0):
    """`tensors`: (name, shape, scale, zp); `constants`: {tensor index: int8 array}."""
    m = fb.ModelT()
    m.version = 3
    oc = fb.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = op_code, min(op_code, 127), 2
    m.operatorCodes = [oc]
    m.buffers = [fb.BufferT()]
    sg = fb.SubGraphT()
    sg.tensors = []
    for i, (name, shape, scale, zp) in enumerate(tensors):
        buf = fb.BufferT()
        if i in constants:
            buf.data = list(constants[i].astype(np.int8).tobytes())
        m.buffers.append(buf)
        sg.tensors.append(_tensor(name, shape, scale, zp, len(m.buffers) - 1))
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, list(inputs), [output]
    if options is not None:
        op.builtinOptionsType, op.builtinOptions = options_type, options
    sg.operators, sg.inputs, sg.outputs = [op], [inputs[0]], [output]
    m.subgraphs = [sg]
    m.description = "tinyml-optimizer operator sweep"
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def unary(op_name, scale, zp):
    """TANH or LOGISTIC of a [256] input with (scale, zp), output at TFLite's fixed parameters."""
    op = getattr(fb.BuiltinOperator, op_name)
    out = (1 / 128, 0) if op_name == "TANH" else (1 / 256, -128)
    return _model(op, [("x", [256], scale, zp), ("y", [256], *out)], {}, [0], 1)


def relu6(s_in, zp_in, s_out, zp_out):
    return _model(fb.BuiltinOperator.RELU6, [("x", [256], s_in, zp_in), ("y", [256], s_out, zp_out)], {}, [0], 1)


def binary(op_name, s1, zp1, s2, zp2, s_out, zp_out):
    """MUL or SUB of an input [256, 1] and a constant [1, 256] holding every code: the [256, 256]
    output covers every pair of operands."""
    op = getattr(fb.BuiltinOperator, op_name)
    options = fb.MulOptionsT() if op_name == "MUL" else fb.SubOptionsT()
    options_type = fb.BuiltinOptions.MulOptions if op_name == "MUL" else fb.BuiltinOptions.SubOptions
    tensors = [("a", [256, 1], s1, zp1), ("b", [1, 256], s2, zp2), ("y", [256, 256], s_out, zp_out)]
    return _model(op, tensors, {1: CODES}, [0, 1], 2, options, options_type)
