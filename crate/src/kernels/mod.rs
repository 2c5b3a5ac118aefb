//! Compute kernels. Each family has a plain reference version beside its fast twin, and tests run
//! every twin against its reference.

pub mod conv;
pub mod conv_f32_direct;
pub mod depthwise_f32;
pub mod elementwise;
pub mod f32x4;
pub mod fc;
pub mod fixedpoint;
pub mod gemm_dot4;
pub mod gemm_f32;
pub mod gemm_i8;
pub mod gemm_sign;
pub mod gemv_f32;
pub mod geometry;
pub mod igemm_i8;
pub mod im2col;
pub mod int8;
pub mod layout;
pub mod lstm;
pub mod pool;
pub mod quant;
pub mod reduce;
pub mod requant;
