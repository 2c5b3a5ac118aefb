//! NumPy `.npy` files (format versions 1–3): C-order arrays of f32, f64, i8, u8, i32 and i64 in
//! either byte order. Anything else gets an error that says what the file holds and what we read.

use crate::error::{Error, Result};

/// Element data of an array.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

const MAGIC: &[u8] = b"\x93NUMPY";
/// Largest array we read: 2^31 elements.
const MAX_ELEMENTS: usize = 1 << 31;

impl NpyData {
    pub fn len(&self) -> usize {
        match self {
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
            NpyData::I8(v) => v.len(),
            NpyData::U8(v) => v.len(),
            NpyData::I32(v) => v.len(),
            NpyData::I64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// NumPy's `descr` for this type, little-endian.
    pub fn descr(&self) -> &'static str {
        match self {
            NpyData::F32(_) => "<f4",
            NpyData::F64(_) => "<f8",
            NpyData::I8(_) => "|i1",
            NpyData::U8(_) => "|u1",
            NpyData::I32(_) => "<i4",
            NpyData::I64(_) => "<i8",
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            NpyData::F32(_) => "float32",
            NpyData::F64(_) => "float64",
            NpyData::I8(_) => "int8",
            NpyData::U8(_) => "uint8",
            NpyData::I32(_) => "int32",
            NpyData::I64(_) => "int64",
        }
    }
}

impl NpyArray {
    pub fn new(shape: Vec<usize>, data: NpyData) -> Result<NpyArray> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::npy(format!("shape {shape:?} needs {n} values, got {}", data.len())));
        }
        Ok(NpyArray { shape, data })
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// All values as f32 (integers converted exactly where they fit).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::F32(v) => v.clone(),
            NpyData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I8(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Integer values as i64, or `None` for float arrays (labels must be integers).
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        Some(match &self.data {
            NpyData::I8(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::U8(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::I32(v) => v.iter().map(|&x| x as i64).collect(),
            NpyData::I64(v) => v.clone(),
            NpyData::F32(_) | NpyData::F64(_) => return None,
        })
    }
}

/// Parses a `.npy` file.
pub fn read(bytes: &[u8]) -> Result<NpyArray> {
    if bytes.len() < 10 || !bytes.starts_with(MAGIC) {
        return Err(Error::npy("not a .npy file (missing the \\x93NUMPY magic)"));
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(Error::npy("truncated header"));
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(Error::npy(format!("unknown .npy format version {v}"))),
    };
    let end = start.checked_add(header_len).filter(|&e| e <= bytes.len()).ok_or_else(|| {
        Error::npy(format!("header of {header_len} bytes runs past the end of the {}-byte file", bytes.len()))
    })?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| Error::npy("header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| Error::npy("header has no 'descr'"))?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"').to_string();
    let fortran = dict_value(header, "fortran_order").ok_or_else(|| Error::npy("header has no 'fortran_order'"))?;
    if fortran.trim() != "False" {
        return Err(Error::npy("Fortran-order arrays are not supported; save with np.ascontiguousarray"));
    }
    let shape_text = dict_value(header, "shape").ok_or_else(|| Error::npy("header has no 'shape'"))?;
    let shape = parse_shape(&shape_text)?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| Error::npy(format!("shape {shape:?} is too large")))?;
    let body = &bytes[end..];
    let (kind, size, big) = parse_descr(&descr)?;
    let want = n * size;
    if body.len() < want {
        return Err(Error::npy(format!(
            "shape {shape:?} of {descr} needs {want} data bytes, the file has {}",
            body.len()
        )));
    }
    let body = &body[..want];
    macro_rules! decode {
        ($t:ty, $n:expr) => {
            body.chunks_exact($n)
                .map(|c| {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(c);
                    if big {
                        <$t>::from_be_bytes(a)
                    } else {
                        <$t>::from_le_bytes(a)
                    }
                })
                .collect()
        };
    }
    let data = match (kind, size) {
        ('f', 4) => NpyData::F32(decode!(f32, 4)),
        ('f', 8) => NpyData::F64(decode!(f64, 8)),
        ('i', 1) => NpyData::I8(body.iter().map(|&b| b as i8).collect()),
        ('u', 1) => NpyData::U8(body.to_vec()),
        ('i', 4) => NpyData::I32(decode!(i32, 4)),
        ('i', 8) => NpyData::I64(decode!(i64, 8)),
        _ => unreachable!("parse_descr only returns supported kinds"),
    };
    Ok(NpyArray { shape, data })
}

/// Serializes an array (format version 1, little-endian, C order).
pub fn write(a: &NpyArray) -> Vec<u8> {
    let shape = match a.shape.len() {
        1 => format!("({},)", a.shape[0]),
        _ => format!("({})", a.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}", a.data.descr());
    // Pad so that the data starts on a 64-byte boundary, ending the header with a newline.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + a.len() * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    match &a.data {
        NpyData::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::F64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::I8(v) => v.iter().for_each(|x| out.push(*x as u8)),
        NpyData::U8(v) => out.extend_from_slice(v),
        NpyData::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::I64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
    out
}

/// The text of `key`'s value in a Python dict literal (up to the next top-level comma or brace).
fn dict_value(header: &str, key: &str) -> Option<String> {
    let pos = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[pos + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?;
    let mut depth = 0i32;
    let mut end = rest.len();
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    Some(rest[..end].trim().to_string())
}

fn parse_shape(text: &str) -> Result<Vec<usize>> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| Error::npy(format!("shape {text} is not a tuple")))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let s = s.trim_end_matches('L');
            s.parse::<usize>().map_err(|_| Error::npy(format!("shape {text} has a non-integer dimension '{s}'")))
        })
        .collect()
}

/// (kind, size, big-endian) for the dtypes we read.
fn parse_descr(d: &str) -> Result<(char, usize, bool)> {
    let mut chars = d.chars();
    let order = chars.next().unwrap_or(' ');
    let (big, rest) = match order {
        '<' | '|' | '=' => (false, &d[1..]),
        '>' => (true, &d[1..]),
        _ => (false, d),
    };
    let kind = rest.chars().next().unwrap_or(' ');
    let size: usize = rest.get(1..).and_then(|s| s.parse().ok()).unwrap_or(0);
    match (kind, size) {
        ('f', 4) | ('f', 8) | ('i', 1) | ('u', 1) | ('i', 4) | ('i', 8) => Ok((kind, size, big)),
        _ => Err(Error::npy(format!(
            "arrays of dtype '{d}' are not supported; use float32, float64, int8, uint8, int32 or int64"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn round_trips_every_type() {
        for data in [
            NpyData::F32(vec![1.5, -2.0, 3.25, 0.0, 1e-3, 7.0]),
            NpyData::F64(vec![1.5, -2.0, 3.25, 0.0, 1e-3, 7.0]),
            NpyData::I8(vec![-128, 0, 127, 1, 2, 3]),
            NpyData::U8(vec![0, 255, 1, 2, 3, 4]),
            NpyData::I32(vec![i32::MIN, 0, i32::MAX, 1, 2, 3]),
            NpyData::I64(vec![i64::MIN, 0, i64::MAX, 1, 2, 3]),
        ] {
            let a = NpyArray::new(vec![2, 3], data).unwrap();
            let bytes = write(&a);
            assert_eq!((10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize) % 64, 0);
            assert_eq!(read(&bytes).unwrap(), a);
        }
        let v = NpyArray::new(vec![4], NpyData::F32(vec![1.0; 4])).unwrap();
        assert!(String::from_utf8_lossy(&write(&v)).contains("'shape': (4,)"));
        let s = NpyArray::new(vec![], NpyData::F32(vec![2.0])).unwrap();
        assert_eq!(read(&write(&s)).unwrap(), s);
    }

    #[test]
    fn reads_big_endian_and_refuses_what_it_cannot() {
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        let h = "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }\n";
        f.extend_from_slice(&(h.len() as u16).to_le_bytes());
        f.extend_from_slice(h.as_bytes());
        f.extend_from_slice(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(read(&f).unwrap().data, NpyData::I32(vec![1, -2]));

        let msg = |bytes: &[u8]| read(bytes).unwrap_err().to_string();
        // Same-length byte substitution inside the header.
        let replace = |from: &str, to: &str| {
            let mut v = f.clone();
            let at = v.windows(from.len()).position(|w| w == from.as_bytes()).unwrap();
            v[at..at + to.len()].copy_from_slice(to.as_bytes());
            v
        };
        assert!(msg(b"hello").contains("not a .npy"));
        assert!(msg(&replace("'fortran_order': False", "'fortran_order': True ")).contains("Fortran"));
        assert!(msg(&replace(">i4", "<f2")).contains("'<f2' are not supported"));
        assert!(msg(&f[..f.len() - 2]).contains("needs 8 data bytes"));
        let mut huge = f.clone();
        huge[8] = 0xff;
        huge[9] = 0xff;
        assert!(msg(&huge).contains("runs past the end"));
        assert!(msg(&replace("(2,),", "(2,9)")).contains("needs 72 data bytes"));
    }
}
