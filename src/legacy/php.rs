//! PHP's `serialize` format, as far as the legacy `spenden.data` blob uses it: arrays with
//! string or integer keys holding strings, integers, floats, booleans, nulls and nested arrays.
//! The blob is `base64_encode(serialize($array))`; [`decode_blob`] undoes both, [`encode_blob`]
//! makes one (for the fixture generator). Strings are byte strings with their length in bytes;
//! they are read as UTF-8 and a string that is not is an error (the import reports the row).

use std::collections::BTreeMap;

use base64::Engine;

/// A PHP value.
#[derive(Debug, Clone, PartialEq)]
pub enum PhpValue {
    /// `N;`
    Null,
    /// `b:0;` / `b:1;`
    Bool(bool),
    /// `i:42;`
    Int(i64),
    /// `d:1.5;`, kept as written.
    Float(String),
    /// `s:3:"abc";`
    Str(String),
    /// `a:1:{…}`, keys rendered as text (PHP's integer keys as their decimal form).
    Array(BTreeMap<String, PhpValue>),
}

impl PhpValue {
    /// The value as text, as PHP would print it (`None` for arrays).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Self::Null => Some(String::new()),
            Self::Bool(b) => Some(if *b { "1".into() } else { String::new() }),
            Self::Int(i) => Some(i.to_string()),
            Self::Float(f) | Self::Str(f) => Some(f.clone()),
            Self::Array(_) => None,
        }
    }
}

/// Why a blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// Not base64.
    #[error("not base64: {0}")]
    Base64(String),
    /// Not PHP's serialisation format, or not an array at the top.
    #[error("not a serialized PHP array: {0} at byte {1}")]
    Syntax(&'static str, usize),
}

/// Decodes a `spenden.data` blob: base64, then a serialized PHP array.
pub fn decode_blob(blob: &str) -> Result<BTreeMap<String, PhpValue>, BlobError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob.trim())
        .map_err(|e| BlobError::Base64(e.to_string()))?;
    let mut p = Parser { s: &bytes, at: 0 };
    let value = p.value()?;
    if p.at != bytes.len() {
        return Err(BlobError::Syntax("trailing bytes", p.at));
    }
    match value {
        PhpValue::Array(map) => Ok(map),
        _ => Err(BlobError::Syntax("the top value is not an array", 0)),
    }
}

/// Encodes an array as a `spenden.data` blob.
pub fn encode_blob(map: &BTreeMap<String, PhpValue>) -> String {
    let mut out = String::new();
    write_array(&mut out, map);
    base64::engine::general_purpose::STANDARD.encode(out.as_bytes())
}

fn write_key(out: &mut String, key: &str) {
    // PHP turns decimal keys into integer keys.
    if !key.is_empty() && key.parse::<i64>().is_ok_and(|i| i.to_string() == key) {
        out.push_str(&format!("i:{key};"));
    } else {
        out.push_str(&format!("s:{}:\"{key}\";", key.len()));
    }
}

fn write_array(out: &mut String, map: &BTreeMap<String, PhpValue>) {
    out.push_str(&format!("a:{}:{{", map.len()));
    for (k, v) in map {
        write_key(out, k);
        write_value(out, v);
    }
    out.push('}');
}

fn write_value(out: &mut String, v: &PhpValue) {
    match v {
        PhpValue::Null => out.push_str("N;"),
        PhpValue::Bool(b) => out.push_str(if *b { "b:1;" } else { "b:0;" }),
        PhpValue::Int(i) => out.push_str(&format!("i:{i};")),
        PhpValue::Float(f) => out.push_str(&format!("d:{f};")),
        PhpValue::Str(s) => out.push_str(&format!("s:{}:\"{s}\";", s.len())),
        PhpValue::Array(m) => write_array(out, m),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, what: &'static str) -> Result<T, BlobError> {
        Err(BlobError::Syntax(what, self.at))
    }

    fn expect(&mut self, b: u8) -> Result<(), BlobError> {
        if self.s.get(self.at) == Some(&b) {
            self.at += 1;
            Ok(())
        } else {
            self.fail("unexpected byte")
        }
    }

    /// Bytes up to (not including) `end`, which is consumed.
    fn until(&mut self, end: u8) -> Result<&str, BlobError> {
        let start = self.at;
        let len = self.s[start..]
            .iter()
            .position(|&b| b == end)
            .ok_or(BlobError::Syntax("unterminated value", start))?;
        self.at = start + len + 1;
        std::str::from_utf8(&self.s[start..start + len])
            .map_err(|_| BlobError::Syntax("not UTF-8", start))
    }

    fn int(&mut self, end: u8) -> Result<i64, BlobError> {
        let at = self.at;
        self.until(end)?
            .parse()
            .map_err(|_| BlobError::Syntax("not an integer", at))
    }

    fn string(&mut self) -> Result<String, BlobError> {
        let len = usize::try_from(self.int(b':')?)
            .map_err(|_| BlobError::Syntax("negative length", self.at))?;
        self.expect(b'"')?;
        let start = self.at;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= self.s.len())
            .ok_or(BlobError::Syntax("string longer than the blob", start))?;
        let text = std::str::from_utf8(&self.s[start..end])
            .map_err(|_| BlobError::Syntax("not UTF-8", start))?
            .to_owned();
        self.at = end;
        self.expect(b'"')?;
        self.expect(b';')?;
        Ok(text)
    }

    fn value(&mut self) -> Result<PhpValue, BlobError> {
        let Some(&tag) = self.s.get(self.at) else {
            return self.fail("unexpected end");
        };
        self.at += 1;
        if tag == b'N' {
            self.expect(b';')?;
            return Ok(PhpValue::Null);
        }
        self.expect(b':')?;
        match tag {
            b'b' => match self.int(b';')? {
                0 => Ok(PhpValue::Bool(false)),
                1 => Ok(PhpValue::Bool(true)),
                _ => self.fail("a boolean is 0 or 1"),
            },
            b'i' => Ok(PhpValue::Int(self.int(b';')?)),
            b'd' => Ok(PhpValue::Float(self.until(b';')?.to_owned())),
            b's' => Ok(PhpValue::Str(self.string()?)),
            b'a' => {
                let n = self.int(b':')?;
                self.expect(b'{')?;
                let mut map = BTreeMap::new();
                for _ in 0..n {
                    let key = match self.value()? {
                        PhpValue::Int(i) => i.to_string(),
                        PhpValue::Str(s) => s,
                        _ => return self.fail("an array key is an integer or a string"),
                    };
                    let v = self.value()?;
                    map.insert(key, v);
                }
                self.expect(b'}')?;
                Ok(PhpValue::Array(map))
            }
            _ => self.fail("unknown type tag"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_written_by_php_is_read_back() {
        // base64 of a:3:{s:8:"nachname";s:7:"Müller";s:8:"impCount";i:3;s:3:"log";a:1:{s:19:"2020-01-01 10:00:00";s:4:"test";}}
        let php = "a:3:{s:8:\"nachname\";s:7:\"Müller\";s:8:\"impCount\";i:3;s:3:\"log\";a:1:{s:19:\"2020-01-01 10:00:00\";s:4:\"test\";}}";
        let blob = base64::engine::general_purpose::STANDARD.encode(php);
        let map = decode_blob(&blob).unwrap();
        assert_eq!(map["nachname"], PhpValue::Str("Müller".into()));
        assert_eq!(map["impCount"], PhpValue::Int(3));
        let PhpValue::Array(log) = &map["log"] else {
            panic!()
        };
        assert_eq!(log["2020-01-01 10:00:00"], PhpValue::Str("test".into()));
    }

    #[test]
    fn encoding_and_decoding_round_trip() {
        let mut map = BTreeMap::new();
        map.insert("ort".to_owned(), PhpValue::Str("Köln \"am\" Rhein;".into()));
        map.insert("0".to_owned(), PhpValue::Bool(true));
        map.insert("x".to_owned(), PhpValue::Null);
        map.insert("d".to_owned(), PhpValue::Float("1.5".into()));
        assert_eq!(decode_blob(&encode_blob(&map)).unwrap(), map);
    }

    #[test]
    fn broken_blobs_are_errors_not_panics() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        for bad in [
            "not base64 at all!".to_owned(),
            b64("a:2:{s:1:\"a\";i:1;}"),
            b64("s:3:\"abc\";"),
            b64("a:1:{s:99:\"a\";i:1;}"),
            b64("a:1:{s:1:\"a\";i:x;}"),
            b64(""),
        ] {
            assert!(decode_blob(&bad).is_err(), "{bad}");
        }
    }
}
