//! NumPy `.npy` files (format versions 1–3): C-order arrays of f32, f64, i8, u8, i32 and i64 in
//! either byte order. Anything else gets an error that says what the file holds and what we read.

use crate::budget;
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
/// Most dimensions we read (NumPy's own limit is 64).
const MAX_RANK: usize = 64;

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

    /// The values as float32 (as [`NpyArray::to_f32`]).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            NpyData::F32(v) => v.clone(),
            NpyData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I8(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as float32, without a copy when they are float32 already.
    pub fn into_f32(self) -> Vec<f32> {
        match self {
            NpyData::F32(v) => v,
            d => d.to_f32(),
        }
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
        let n = budget::elements_u64(&shape).map_err(|_| Error::npy(format!("shape {shape:?} is too large")))?;
        if n != data.len() as u64 {
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
        self.data.to_f32()
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
    read_for(bytes, budget::ADDRESS_BITS)
}

/// [`read`] with the size arithmetic of a target whose `usize` has `bits` bits (32 on wasm32).
/// Both widths must agree on every file smaller than 4 GiB; the fuzz target checks that they do.
pub fn read_for(bytes: &[u8], bits: u32) -> Result<NpyArray> {
    let (h, n) = sized_header(bytes, bits)?;
    let data = decode(&bytes[h.data_offset..h.data_offset + n * h.size], &h)?;
    debug_assert_eq!(data.len(), n);
    Ok(NpyArray { shape: h.shape, data })
}

/// The header of a `.npy` file whose data is all there (checked as [`read`] checks it), without
/// decoding the data: see [`read_elements`].
pub fn checked_header(bytes: &[u8]) -> Result<Header> {
    sized_header(bytes, budget::ADDRESS_BITS).map(|(h, _)| h)
}

/// The header and element count of a `.npy` file whose data bytes are all there.
fn sized_header(bytes: &[u8], bits: u32) -> Result<(Header, usize)> {
    let h = header(bytes)?;
    let n = budget::elements_u64(&h.shape).map_err(|_| Error::npy(format!("shape {:?} is too large", h.shape)))?;
    let want = n.checked_mul(h.size as u64).ok_or_else(|| Error::npy(format!("shape {:?} is too large", h.shape)))?;
    let body = &bytes[h.data_offset..];
    if (body.len() as u64) < want {
        return Err(Error::npy(format!(
            "shape {:?} of {} needs {want} data bytes, the file has {}",
            h.shape,
            h.descr,
            body.len()
        )));
    }
    // The data is in the file, so its length fits this target; check it for `bits` anyway.
    budget::to_usize(want, bits)?;
    let n = budget::to_usize(n, bits)?;
    Ok((h, n))
}

/// The elements of `body` (whole elements of the type `h` describes), decoded.
fn decode(body: &[u8], h: &Header) -> Result<NpyData> {
    let big = h.big_endian;
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
    Ok(match (h.kind, h.size) {
        ('f', 4) => NpyData::F32(decode!(f32, 4)),
        ('f', 8) => NpyData::F64(decode!(f64, 8)),
        ('i', 1) => NpyData::I8(body.iter().map(|&b| b as i8).collect()),
        ('u', 1) => NpyData::U8(body.to_vec()),
        ('i', 4) => NpyData::I32(decode!(i32, 4)),
        ('i', 8) => NpyData::I64(decode!(i64, 8)),
        _ => return Err(Error::npy(format!("arrays of dtype '{}' are not supported", h.descr))),
    })
}

/// Elements `range` (in C order) of the `.npy` file `bytes` whose header is `h`, decoded as
/// [`read`] decodes them: a worker reads only its share of a large array.
pub fn read_elements(bytes: &[u8], h: &Header, range: std::ops::Range<usize>) -> Result<NpyData> {
    let at = |e: usize| e.checked_mul(h.size).and_then(|b| b.checked_add(h.data_offset));
    let (Some(lo), Some(hi)) = (at(range.start), at(range.end)) else {
        return Err(Error::npy(format!("elements {range:?} are out of range")));
    };
    let body = bytes
        .get(lo..hi)
        .ok_or_else(|| Error::npy(format!("elements {range:?} run past the end of the {}-byte file", bytes.len())))?;
    decode(body, h)
}

/// What a `.npy` header says: shape, element type, and where the data starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub shape: Vec<usize>,
    pub descr: String,
    /// `'f'`, `'i'` or `'u'`.
    pub kind: char,
    /// Bytes per element.
    pub size: usize,
    pub big_endian: bool,
    /// Byte offset of the first element.
    pub data_offset: usize,
}

/// Parses the magic, version and header dict of a `.npy` file, without touching the data.
pub fn header(bytes: &[u8]) -> Result<Header> {
    if bytes.len() < 10 || !bytes.starts_with(MAGIC) {
        return Err(Error::npy("not a .npy file (missing the \\x93NUMPY magic)"));
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as u64, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(Error::npy("truncated header"));
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as u64, 12)
        }
        v => return Err(Error::npy(format!("unknown .npy format version {v}"))),
    };
    let end = (start as u64).checked_add(header_len).filter(|&e| e <= bytes.len() as u64).ok_or_else(|| {
        Error::npy(format!("header of {header_len} bytes runs past the end of the {}-byte file", bytes.len()))
    })? as usize;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| Error::npy("header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| Error::npy("header has no 'descr'"))?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"').to_string();
    let fortran = dict_value(header, "fortran_order").ok_or_else(|| Error::npy("header has no 'fortran_order'"))?;
    if fortran.trim() != "False" {
        return Err(Error::npy("Fortran-order arrays are not supported; save with np.ascontiguousarray"));
    }
    let shape_text = dict_value(header, "shape").ok_or_else(|| Error::npy("header has no 'shape'"))?;
    let shape = parse_shape(&shape_text)?;
    let (kind, size, big_endian) = parse_descr(&descr)?;
    Ok(Header { shape, descr, kind, size, big_endian, data_offset: end })
}

/// Serializes an array (little-endian, C order): format version 1, or 2 when the header is
/// longer than version 1's 16-bit length field holds.
pub fn write(a: &NpyArray) -> Vec<u8> {
    let shape = match a.shape.len() {
        1 => format!("({},)", a.shape[0]),
        _ => format!("({})", a.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}", a.data.descr());
    // Version 1 stores the header length in 16 bits after a 10-byte prefix; version 2 in 32 bits
    // after 12 bytes. The header is padded so that the data starts on a 64-byte boundary.
    let v1 = header.len() + 1 + 63 <= u16::MAX as usize;
    let prefix = if v1 { 10 } else { 12 };
    let total = prefix + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(prefix + header.len() + a.len() * 8);
    out.extend_from_slice(MAGIC);
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
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
    let dims: Vec<&str> = inner.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if dims.len() > MAX_RANK {
        return Err(Error::npy(format!("the shape has {} dimensions; at most {MAX_RANK} are read", dims.len())));
    }
    dims.iter()
        .map(|s| {
            let s = s.trim_end_matches('L');
            let d = s.parse::<u64>().map_err(|_| {
                let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                Error::npy(if digits {
                    format!("dimension {s} of shape {text} is too large")
                } else {
                    format!("shape {text} has a non-integer dimension '{s}'")
                })
            })?;
            usize::try_from(d).map_err(|_| Error::npy(format!("dimension {d} of shape {text} is too large")))
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

    /// A file of `header` (a dict literal) and `data`, format version 1.
    fn npy_file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        f.extend_from_slice(&(header.len() as u16).to_le_bytes());
        f.extend_from_slice(header.as_bytes());
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn sizes_are_checked_in_64_bits_and_agree_on_32_bit_targets() {
        // 2^31 floats in a 77-byte file: 2^33 bytes wrap to 0 in a 32-bit usize; refused on both.
        let f = npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483648,), }\n", &[]);
        assert_eq!(f.len(), 77);
        for bits in [32, 64] {
            let e = read_for(&f, bits).unwrap_err();
            assert_eq!(e.code().as_str(), "invalid_npy");
            assert!(e.to_string().contains("needs 8589934592 data bytes, the file has 0"), "{bits}: {e}");
        }
        // 2^16 x 2^16 int8 elements: 2^32, which a 32-bit product wraps to 0.
        let f = npy_file("{'descr': '|i1', 'fortran_order': False, 'shape': (65536, 65536), }\n", &[1, 2, 3]);
        assert!(read_for(&f, 32).unwrap_err().to_string().contains("needs 4294967296 data bytes"));
        // Dimensions whose product overflows even 64 bits.
        let f = npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }\n", &[]);
        assert!(read_for(&f, 64).unwrap_err().to_string().contains("too large"));
        // A dimension beyond u64, and more dimensions than NumPy writes.
        let f = npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", &[]);
        assert!(read(&f).unwrap_err().to_string().contains("dimension 99999999999999999999 of shape"));
        let dims = vec!["1"; 65].join(", ");
        let f = npy_file(&format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}\n"), &[0; 4]);
        assert!(read(&f).unwrap_err().to_string().contains("65 dimensions"));
        // What fits reads the same with either width.
        let ok = write(&NpyArray::new(vec![3, 2], NpyData::I32(vec![1, 2, 3, 4, 5, 6])).unwrap());
        assert_eq!(read_for(&ok, 32).unwrap(), read_for(&ok, 64).unwrap());
        assert!(NpyArray::new(vec![usize::MAX, 2], NpyData::U8(vec![])).is_err());
    }

    #[test]
    fn write_uses_version_2_when_the_header_is_too_long_for_16_bits() {
        // 30,000 dimensions of 1 (NumPy reads at most 64, but what we write must not be corrupt).
        let a = NpyArray { shape: vec![1; 30_000], data: NpyData::F32(vec![2.5]) };
        let bytes = write(&a);
        assert_eq!(bytes[6], 2, "format version 2");
        let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        assert!(len > u16::MAX as usize);
        assert_eq!((12 + len) % 64, 0, "data 64-byte aligned");
        assert_eq!(bytes[12 + len - 1], b'\n');
        assert_eq!(&bytes[12 + len..], &2.5f32.to_le_bytes());
        let h = header(&bytes).unwrap_err();
        assert!(h.to_string().contains("30000 dimensions"), "{h}");
        // Short headers stay version 1.
        let small = write(&NpyArray::new(vec![2], NpyData::U8(vec![1, 2])).unwrap());
        assert_eq!(small[6], 1);
    }
}
