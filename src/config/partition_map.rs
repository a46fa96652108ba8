//! A JSON object keyed by partition number (`{"0": 100, "1": 200}`), as the exporter's
//! `starting_offsets` and `offset_increment` are. Keys must be partition numbers and appear once.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionMap<T>(pub BTreeMap<i32, T>);

impl<T: Copy> PartitionMap<T> {
    pub fn get(&self, partition: i32) -> Option<T> {
        self.0.get(&partition).copied()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for PartitionMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for MapVisitor<T> {
            type Value = PartitionMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object keyed by partition number, like {\"0\": 100}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let partition: i32 =
                        key.trim().parse().ok().filter(|p| *p >= 0).ok_or_else(|| {
                            serde::de::Error::custom(format!(
                                "key \"{key}\" is not a partition number; use \"0\", \"1\", ..."
                            ))
                        })?;
                    let value = map.next_value()?;
                    if out.insert(partition, value).is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "partition {partition} is listed twice; keep one entry"
                        )));
                    }
                }
                Ok(PartitionMap(out))
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}
