//! Lossless JSON objects.
//!
//! OONI measurements come from a decade of probes (2014–today) and every generation added, renamed or
//! dropped keys. censorwatch must read all of them and write back exactly what it read, so every object
//! type in this crate is declared with [`json_object!`], which generates:
//!
//! * a struct whose known keys are `Option<T>` fields (missing is normal in old data);
//! * an `extra` map that keeps every key this version does not model, verbatim, *and* every known key
//!   whose value was an explicit `null` (so that `"input": null` survives a round trip as `null`,
//!   not as an absent key);
//! * `Deserialize` and `Serialize` impls.
//!
//! Why not `#[serde(flatten)]`: flatten makes serde buffer the whole object into an intermediate tree
//! before deserializing it, which costs about as much as parsing twice. The generated visitor here
//! dispatches on the key directly and only materializes a `serde_json::Value` for unknown keys.

/// Declares a lossless JSON object type. See the module documentation.
///
/// ```
/// censorwatch_model::json_object! {
///     /// A point.
///     pub struct Point {
///         /// Horizontal.
///         x: i64 => "x",
///         /// Vertical.
///         y: i64 => "y",
///     }
/// }
/// let p: Point = serde_json::from_str(r#"{"x": 1, "y": null, "z": true}"#).unwrap();
/// assert_eq!(p.x, Some(1));
/// assert_eq!(p.y, None);
/// let back = serde_json::to_value(&p).unwrap();
/// assert_eq!(back, serde_json::json!({"x": 1, "y": null, "z": true}));
/// ```
#[macro_export]
macro_rules! json_object {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty => $key:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: ::core::option::Option<$ty>, )*
            /// Keys this version of censorwatch does not model, and known keys whose value was `null`,
            /// kept verbatim so that the object serializes back to what was read.
            pub extra: $crate::serde_json::Map<::std::string::String, $crate::serde_json::Value>,
        }

        const _: () = {
            use $crate::serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
            use $crate::serde::ser::{Serialize, SerializeMap, Serializer};
            use ::core::fmt;

            #[allow(non_camel_case_types)]
            enum Key {
                $( $field, )*
                Unknown(::std::string::String),
            }

            impl Key {
                fn from_str(s: &str) -> Self {
                    match s {
                        $( $key => Key::$field, )*
                        other => Key::Unknown(other.to_owned()),
                    }
                }
            }

            impl<'de> Deserialize<'de> for Key {
                fn deserialize<D: Deserializer<'de>>(d: D) -> ::core::result::Result<Self, D::Error> {
                    struct KeyVisitor;
                    impl<'de> Visitor<'de> for KeyVisitor {
                        type Value = Key;
                        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                            f.write_str("an object key")
                        }
                        fn visit_str<E: de::Error>(self, v: &str) -> ::core::result::Result<Key, E> {
                            Ok(Key::from_str(v))
                        }
                    }
                    d.deserialize_str(KeyVisitor)
                }
            }

            impl<'de> Deserialize<'de> for $name {
                fn deserialize<D: Deserializer<'de>>(d: D) -> ::core::result::Result<Self, D::Error> {
                    struct ObjectVisitor;
                    impl<'de> Visitor<'de> for ObjectVisitor {
                        type Value = $name;
                        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                            f.write_str(concat!("a JSON object (", stringify!($name), ")"))
                        }
                        #[allow(unused_mut)]
                        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> ::core::result::Result<$name, A::Error> {
                            let mut out = $name::default();
                            while let Some(key) = map.next_key::<Key>()? {
                                match key {
                                    $(
                                        Key::$field => {
                                            let value: ::core::option::Option<$ty> = map.next_value()
                                                .map_err(|e| de::Error::custom(format_args!("key \"{}\": {}", $key, e)))?;
                                            if value.is_none() {
                                                out.extra.insert($key.to_owned(), $crate::serde_json::Value::Null);
                                            } else {
                                                // A duplicate key: the last value wins, as in JSON parsers.
                                                out.extra.remove($key);
                                            }
                                            out.$field = value;
                                        }
                                    )*
                                    Key::Unknown(name) => {
                                        let value: $crate::serde_json::Value = map.next_value()?;
                                        out.extra.insert(name, value);
                                    }
                                }
                            }
                            Ok(out)
                        }
                    }
                    d.deserialize_map(ObjectVisitor)
                }
            }

            impl Serialize for $name {
                fn serialize<S: Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                    let mut map = s.serialize_map(None)?;
                    $(
                        if let Some(value) = &self.$field {
                            map.serialize_entry($key, value)?;
                        }
                    )*
                    for (name, value) in &self.extra {
                        let shadowed = match name.as_str() {
                            $( $key => self.$field.is_some(), )*
                            _ => false,
                        };
                        if !shadowed {
                            map.serialize_entry(name, value)?;
                        }
                    }
                    map.end()
                }
            }
        };
    };
}
