//! Values that OONI writes either as text or as `{"format": "base64", "data": "…"}` (df-001
//! "MaybeBinaryData"): HTTP bodies, header values, certificates.

use base64::Engine as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

crate::json_object! {
    /// The `{"format": "base64", "data": "…"}` form.
    pub struct EncodedData {
        /// Always `"base64"` in the spec.
        format: String => "format",
        /// The encoded bytes.
        data: String => "data",
    }
}

/// Text, base64-encoded bytes, or (in a few old header maps) a list of values.
#[derive(Debug, Clone, PartialEq)]
pub enum MaybeBinary {
    /// A UTF-8 string.
    Text(String),
    /// Bytes the probe could not write as UTF-8.
    Encoded(EncodedData),
    /// A list of values (old header maps with repeated headers).
    List(Vec<MaybeBinary>),
}

impl MaybeBinary {
    /// The bytes. Base64 that does not decode yields `None`; a list joins its items with `", "`.
    pub fn bytes(&self) -> Option<Cow<'_, [u8]>> {
        match self {
            MaybeBinary::Text(s) => Some(Cow::Borrowed(s.as_bytes())),
            MaybeBinary::Encoded(e) => {
                let data = e.data.as_deref()?;
                let engine = &base64::engine::general_purpose::STANDARD;
                engine.decode(data.trim()).ok().map(Cow::Owned)
            }
            MaybeBinary::List(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    out.extend_from_slice(&item.bytes()?);
                }
                Some(Cow::Owned(out))
            }
        }
    }

    /// The value as text, lossily decoding bytes that are not UTF-8.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            MaybeBinary::Text(s) => Cow::Borrowed(s),
            other => match other.bytes() {
                Some(Cow::Borrowed(b)) => String::from_utf8_lossy(b),
                Some(Cow::Owned(b)) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
                None => Cow::Borrowed(""),
            },
        }
    }

    /// Length in bytes of the decoded value (0 when it does not decode).
    pub fn len(&self) -> usize {
        match self {
            MaybeBinary::Text(s) => s.len(),
            other => other.bytes().map_or(0, |b| b.len()),
        }
    }

    /// Whether the decoded value is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<&str> for MaybeBinary {
    fn from(s: &str) -> Self {
        MaybeBinary::Text(s.to_owned())
    }
}

impl Serialize for MaybeBinary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MaybeBinary::Text(t) => s.serialize_str(t),
            MaybeBinary::Encoded(e) => e.serialize(s),
            MaybeBinary::List(l) => l.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MaybeBinary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeBinary;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a {\"format\": \"base64\", \"data\": …} object, or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MaybeBinary, E> {
                Ok(MaybeBinary::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<MaybeBinary, E> {
                Ok(MaybeBinary::Text(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MaybeBinary, A::Error> {
                EncodedData::deserialize(de::value::MapAccessDeserializer::new(map)).map(MaybeBinary::Encoded)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeBinary, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(MaybeBinary::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_base64_decode() {
        let t: MaybeBinary = serde_json::from_str(r#""hello""#).unwrap();
        assert_eq!(t.bytes().unwrap().as_ref(), b"hello");
        let b: MaybeBinary = serde_json::from_str(r#"{"format":"base64","data":"aGk="}"#).unwrap();
        assert_eq!(b.bytes().unwrap().as_ref(), b"hi");
        assert_eq!(b.text(), "hi");
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"format":"base64","data":"aGk="}"#
        );
    }

    #[test]
    fn bad_base64_is_none_not_a_panic() {
        let b: MaybeBinary = serde_json::from_str(r#"{"format":"base64","data":"!!!"}"#).unwrap();
        assert!(b.bytes().is_none());
        assert_eq!(b.len(), 0);
    }
}
