//! Errors of the whole crate. Every error names what is wrong and where (node, tensor, byte offset),
//! carries a stable machine-readable code, and no public function panics on bad input.

use serde::Serialize;
use std::fmt;

/// Where in a model an error was found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "ErrorLocation"))]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub node: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub op: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub tensor: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub tensor_name: Option<String>,
}

impl Location {
    pub fn node(index: usize, op: &str) -> Self {
        Location { node: Some(index), op: Some(op.to_string()), ..Default::default() }
    }

    pub fn tensor(index: usize, name: &str) -> Self {
        Location { tensor: Some(index), tensor_name: Some(name.to_string()), ..Default::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.node.is_none() && self.tensor.is_none()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(n) = self.node {
            match &self.op {
                Some(op) => parts.push(format!("node {n} ({op})")),
                None => parts.push(format!("node {n}")),
            }
        }
        if let Some(t) = self.tensor {
            match &self.tensor_name {
                Some(name) if !name.is_empty() => parts.push(format!("tensor {t} '{name}'")),
                _ => parts.push(format!("tensor {t}")),
            }
        }
        f.write_str(&parts.join(", "))
    }
}

/// Stable error codes, shared with the JS API and the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "CoreErrorCode"))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The model file is malformed: truncated, inconsistent, or not a model at all.
    InvalidModel,
    /// The model is valid but uses something this version cannot handle.
    Unsupported,
    /// Data given to the model (inputs, calibration, labels) does not fit it.
    InvalidInput,
    /// An option or argument is out of range or contradicts another.
    InvalidArgument,
    /// A `.npy` file is malformed or of a kind we do not read.
    InvalidNpy,
    /// The operation was cancelled by the caller.
    Cancelled,
    /// The model or data needs more memory than the budget allows (or than 32/64-bit sizes hold).
    ResourceLimit,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidModel => "invalid_model",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::InvalidNpy => "invalid_npy",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::ResourceLimit => "resource_limit",
        }
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// The bytes are not a well-formed model file.
    #[error("invalid model file: {message}{}", where_(.at))]
    Format { message: String, at: Location },
    /// The model reads, but its graph is inconsistent (shapes, types, references).
    #[error("invalid model: {message}{}", where_(.at))]
    Graph { message: String, at: Location },
    #[error("unsupported: {message}{}", where_(.at))]
    Unsupported { message: String, at: Location },
    #[error("invalid input: {message}")]
    Input { message: String },
    #[error("invalid argument: {message}")]
    Argument { message: String },
    #[error("invalid .npy data: {message}")]
    Npy { message: String },
    #[error("cancelled")]
    Cancelled,
    /// A size over the resource budget: `what` needs `asked` bytes (`None`: more than 64-bit
    /// arithmetic can count), and the limit is `limit`. Checked before anything is allocated.
    #[error("over the memory budget: {what} needs {} bytes, the limit is {} bytes{}", asked_text(*.asked), group(*.limit), where_(.at))]
    Resource { what: Box<str>, asked: Option<u64>, limit: u64, at: Location },
}

fn asked_text(asked: Option<u64>) -> String {
    match asked {
        Some(n) => group(n),
        None => format!("more than {}", group(u64::MAX)),
    }
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn where_(loc: &Location) -> String {
    if loc.is_empty() {
        String::new()
    } else {
        format!(" (at {loc})")
    }
}

impl Error {
    pub fn format(message: impl Into<String>) -> Self {
        Error::Format { message: message.into(), at: Location::default() }
    }

    pub fn graph(message: impl Into<String>, at: Location) -> Self {
        Error::Graph { message: message.into(), at }
    }

    pub fn unsupported(message: impl Into<String>, at: Location) -> Self {
        Error::Unsupported { message: message.into(), at }
    }

    pub fn input(message: impl Into<String>) -> Self {
        Error::Input { message: message.into() }
    }

    pub fn argument(message: impl Into<String>) -> Self {
        Error::Argument { message: message.into() }
    }

    pub fn npy(message: impl Into<String>) -> Self {
        Error::Npy { message: message.into() }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Format { .. } | Error::Graph { .. } => ErrorCode::InvalidModel,
            Error::Unsupported { .. } => ErrorCode::Unsupported,
            Error::Input { .. } => ErrorCode::InvalidInput,
            Error::Argument { .. } => ErrorCode::InvalidArgument,
            Error::Npy { .. } => ErrorCode::InvalidNpy,
            Error::Cancelled => ErrorCode::Cancelled,
            Error::Resource { .. } => ErrorCode::ResourceLimit,
        }
    }

    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Format { at, .. }
            | Error::Graph { at, .. }
            | Error::Unsupported { at, .. }
            | Error::Resource { at, .. } => Some(at),
            _ => None,
        }
    }

    /// Adds a location to errors that have none yet.
    pub fn at(mut self, loc: Location) -> Self {
        if let Error::Format { at, .. }
        | Error::Graph { at, .. }
        | Error::Unsupported { at, .. }
        | Error::Resource { at, .. } = &mut self
        {
            if at.is_empty() {
                *at = loc;
            }
        }
        self
    }

    /// For a resource error: bytes asked (`None` when beyond 64-bit arithmetic) and the limit.
    pub fn figures(&self) -> Option<(Option<u64>, u64)> {
        match self {
            Error::Resource { asked, limit, .. } => Some((*asked, *limit)),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn resource_errors_name_what_where_and_the_figures() {
        let e = Error::Resource {
            what: "tensor 3 'x'".into(),
            asked: Some(8_589_934_588),
            limit: 1 << 28,
            at: Location::default(),
        }
        .at(Location::node(2, "PAD"));
        assert_eq!(e.code(), ErrorCode::ResourceLimit);
        assert_eq!(e.code().as_str(), "resource_limit");
        assert_eq!(
            e.to_string(),
            "over the memory budget: tensor 3 'x' needs 8,589,934,588 bytes, the limit is 268,435,456 bytes (at node 2 (PAD))"
        );
        assert_eq!(e.figures(), Some((Some(8_589_934_588), 1 << 28)));
        assert_eq!(e.location().and_then(|l| l.node), Some(2));
        let e = Error::Resource { what: "x".into(), asked: None, limit: 7, at: Location::default() };
        assert!(e.to_string().contains("needs more than 18,446,744,073,709,551,615 bytes"), "{e}");
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
    }
}
