//! IP → network lookups from range CSVs in the ip-location-db format: `start,end,asn,org` for
//! networks (`@ip-location-db/asn`) and `start,end,country` for countries (`…/country`), IPv4 and
//! IPv6 in the same file or in separate ones. Ranges are kept sorted; a lookup is a binary search.
//!
//! Pure: parsing takes a reader, lookups take an address.

use std::io::Read;
use std::net::IpAddr;

/// One network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// The AS number.
    pub asn: u32,
    /// The AS organisation's name.
    pub org: String,
}

/// A table of address ranges to values.
#[derive(Debug, Clone)]
pub struct RangeTable<T> {
    v4: Vec<(u32, u32, T)>,
    v6: Vec<(u128, u128, T)>,
}

impl<T> Default for RangeTable<T> {
    fn default() -> Self {
        RangeTable {
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }
}

/// Why a table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A row is malformed.
    #[error("line {line}: {reason}")]
    Row {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The CSV reader failed.
    #[error("cannot read the table: {0}")]
    Csv(#[from] csv::Error),
}

impl<T: Clone> RangeTable<T> {
    /// The value whose range holds `ip`.
    pub fn get(&self, ip: IpAddr) -> Option<&T> {
        match ip {
            IpAddr::V4(v4) => find(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(v6)),
            },
        }
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&mut self, start: IpAddr, end: IpAddr, value: T) -> Result<(), String> {
        match (start, end) {
            (IpAddr::V4(s), IpAddr::V4(e)) if u32::from(s) <= u32::from(e) => self.v4.push((s.into(), e.into(), value)),
            (IpAddr::V6(s), IpAddr::V6(e)) if u128::from(s) <= u128::from(e) => {
                self.v6.push((s.into(), e.into(), value))
            }
            _ => return Err(format!("range {start}–{end} is reversed or mixes IPv4 and IPv6")),
        }
        Ok(())
    }

    fn finish(mut self) -> Self {
        self.v4.sort_by_key(|r| r.0);
        self.v6.sort_by_key(|r| r.0);
        self
    }

    fn parse<R: Read>(
        reader: R,
        min_fields: usize,
        value: impl Fn(&csv::StringRecord) -> Result<T, String>,
    ) -> Result<Self, TableError> {
        let mut table = RangeTable::default();
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        for row in rdr.records() {
            let row = row?;
            let line = row.position().map_or(0, |p| p.line());
            let err = |reason: String| TableError::Row { line, reason };
            if row.len() == 1 && row[0].trim().is_empty() {
                continue;
            }
            if row.len() < min_fields {
                return Err(err(format!(
                    "expected at least {min_fields} fields, found {}",
                    row.len()
                )));
            }
            let ip = |i: usize| {
                row[i]
                    .trim()
                    .parse::<IpAddr>()
                    .map_err(|_| err(format!("{:?} is not an IP address", &row[i])))
            };
            let (start, end) = (ip(0)?, ip(1)?);
            let v = value(&row).map_err(err)?;
            table.insert(start, end, v).map_err(err)?;
        }
        Ok(table.finish())
    }
}

fn find<K: Ord + Copy, T>(ranges: &[(K, K, T)], key: K) -> Option<&T> {
    let i = ranges.partition_point(|r| r.0 <= key);
    let (_, end, v) = ranges.get(i.checked_sub(1)?)?;
    (key <= *end).then_some(v)
}

/// Reads an ASN table: `start,end,asn,org`.
pub fn parse_asn_table<R: Read>(reader: R) -> Result<RangeTable<Network>, TableError> {
    RangeTable::parse(reader, 3, |row| {
        let asn = row[2]
            .trim()
            .trim_start_matches("AS")
            .parse::<u32>()
            .map_err(|_| format!("{:?} is not an AS number", &row[2]))?;
        let org = row.get(3).unwrap_or("").trim().to_owned();
        Ok(Network { asn, org })
    })
}

/// Reads a country table: `start,end,cc`.
pub fn parse_country_table<R: Read>(reader: R) -> Result<RangeTable<String>, TableError> {
    RangeTable::parse(reader, 3, |row| {
        let cc = row[2].trim().to_ascii_uppercase();
        if cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(cc)
        } else {
            Err(format!("{:?} is not a two-letter country code", &row[2]))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASN: &str = "8.25.194.0,8.25.197.255,35995,Twitter Inc.\n\
                       14.1.104.0,14.1.107.255,9541,\"Cyber Internet Services (Private) Limited\"\n\
                       2001:db8::,2001:db8::ffff,64500,Doc Net\n";

    #[test]
    fn lookups_hit_inside_and_miss_outside() {
        let t = parse_asn_table(ASN.as_bytes()).unwrap();
        assert_eq!(t.len(), 3);
        let get = |ip: &str| t.get(ip.parse().unwrap()).map(|n| n.asn);
        assert_eq!(get("8.25.194.0"), Some(35995));
        assert_eq!(get("8.25.197.255"), Some(35995));
        assert_eq!(get("8.25.198.0"), None);
        assert_eq!(get("14.1.105.7"), Some(9541));
        assert_eq!(get("1.1.1.1"), None);
        assert_eq!(get("::ffff:8.25.195.1"), Some(35995));
        assert_eq!(get("2001:db8::10"), Some(64500));
        assert_eq!(
            t.get("14.1.105.7".parse().unwrap()).unwrap().org,
            "Cyber Internet Services (Private) Limited"
        );
    }

    #[test]
    fn bad_rows_name_their_line() {
        let e = parse_asn_table("1.0.0.0,1.0.0.255,13335,Cloudflare\nnope,1.0.0.1,1,x\n".as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("line 2:"), "{e}");
        let e = parse_asn_table("1.0.0.9,1.0.0.1,1,x\n".as_bytes()).unwrap_err();
        assert!(e.to_string().contains("reversed"), "{e}");
        let e = parse_asn_table("1.0.0.0,1.0.0.1,ASX,x\n".as_bytes()).unwrap_err();
        assert!(e.to_string().contains("AS number"), "{e}");
        let e = parse_country_table("1.0.0.0,1.0.0.1,Pakistan\n".as_bytes()).unwrap_err();
        assert!(e.to_string().contains("country code"), "{e}");
        let e = parse_asn_table("1.0.0.0,1.0.0.1\n".as_bytes()).unwrap_err();
        assert!(e.to_string().contains("at least 3"), "{e}");
    }

    #[test]
    fn countries() {
        let t = parse_country_table("39.32.0.0,39.63.255.255,pk\n".as_bytes()).unwrap();
        assert_eq!(t.get("39.40.1.1".parse().unwrap()).map(String::as_str), Some("PK"));
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;

    #[test]
    fn the_shipped_ip_location_db_subset_reads() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/asn/iplocationdb_asn_ipv4_subset_PK_and_Twitter.csv"
        );
        let t = parse_asn_table(std::fs::File::open(path).unwrap()).unwrap();
        assert_eq!(t.len(), 261);
        let twitter = t.get("8.25.195.7".parse().unwrap()).unwrap();
        assert_eq!((twitter.asn, twitter.org.as_str()), (35995, "Twitter Inc."));
        assert_eq!(t.get("14.1.104.1".parse().unwrap()).unwrap().asn, 9541);
        assert!(t.get("127.0.0.1".parse().unwrap()).is_none());
    }
}
