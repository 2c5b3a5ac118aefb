//! Sizes and alignments of TensorFlow Lite Micro's runtime structures, as the memory planner needs
//! them.
//!
//! The values are those of the build the prediction is checked against: the `tflite-micro` Python
//! runtime on a 64-bit host (its `RecordingMicroAllocator`, compression support compiled in), read
//! from TFLM's headers with `sizeof`/`alignof`. A firmware build on a 32-bit microcontroller uses
//! the plain `MicroAllocator` and 4-byte pointers, so every one of these structures is the same
//! size or smaller there: a prediction made with this layout is an upper bound for it (for the same
//! TFLM version and its reference kernels).

/// One allocation request: bytes and required alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alloc {
    pub size: u64,
    pub align: u64,
}

/// Shorthand for an [`Alloc`].
pub const fn alloc(size: u64, align: u64) -> Alloc {
    Alloc { size, align }
}

/// `MicroArenaBufferAlignment()`: planned buffers, kernel persistent buffers and variable tensors.
pub const ARENA_ALIGNMENT: u64 = 16;

/// The allocator objects placed in the arena's tail when the interpreter is created, in order:
/// the single-arena buffer allocator, the greedy memory planner and the micro allocator.
pub const ALLOCATOR_OBJECTS: [Alloc; 3] = [alloc(104, 8), alloc(72, 8), alloc(272, 8)];
/// `MicroBuiltinDataAllocator`, placed when model allocation starts.
pub const BUILTIN_DATA_ALLOCATOR: Alloc = alloc(16, 8);
/// `SubgraphAllocations`, one per subgraph.
pub const SUBGRAPH_ALLOCATIONS: Alloc = alloc(24, 8);
/// `TfLiteEvalTensor`, one per tensor of every subgraph.
pub const EVAL_TENSOR: Alloc = alloc(24, 8);
/// `NodeAndRegistration`, one per operator of every subgraph.
pub const NODE_AND_REGISTRATION: Alloc = alloc(64, 8);
/// `TfLiteTensor`: temporary ones while kernels prepare, persistent ones for model inputs and
/// outputs.
pub const TFLITE_TENSOR: Alloc = alloc(64, 8);
/// `TfLiteAffineQuantization`, with each TfLiteTensor of a quantized tensor.
pub const AFFINE_QUANTIZATION: Alloc = alloc(24, 8);
/// `TfLiteIntArray` header (its `size`); the zero points follow as 4-byte ints.
pub const INT_ARRAY_HEADER: u64 = 4;
pub const INT_ARRAY_ALIGN: u64 = 4;
/// `AllocationInfo`, one per tensor and scratch buffer while the plan is made.
pub const ALLOCATION_INFO: Alloc = alloc(32, 8);
/// `size_t` subgraph offsets of the allocation-info builder, one per subgraph.
pub const SUBGRAPH_OFFSET: Alloc = alloc(8, 8);
/// `ScratchBufferRequest`, kept in the arena's head while kernels prepare.
pub const SCRATCH_REQUEST: Alloc = alloc(16, 8);
/// `ScratchBufferHandle`, one per scratch buffer once the plan is made.
pub const SCRATCH_HANDLE: Alloc = alloc(8, 8);
/// A pointer: the interpreter's arrays of input and output `TfLiteTensor*`.
pub const POINTER: u64 = 8;
/// Scratch buffer requests each kernel may make (`kMaxScratchBuffersPerOp`): the head always keeps
/// room for this many more.
pub const MAX_SCRATCH_PER_OP: u64 = 12;
/// Bytes per planned buffer that `GreedyMemoryPlanner` needs for its own bookkeeping while
/// planning (requirements, two sort arrays, the offset list entry and the result offset).
pub const GREEDY_BYTES_PER_BUFFER: u64 = 16 + 4 + 4 + 12 + 4;
