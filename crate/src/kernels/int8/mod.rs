//! Int8 kernels with TFLite's integer arithmetic: the reference loops and their fast twins.

pub mod conv;
pub mod depthwise;
pub mod direct;
pub mod gemv;
pub mod lstm;
pub mod pointwise;
pub mod pointwise_conv;
pub mod pool;
