//! Sharding a fleet of series across pulsewatch instances: `[source] shard = "k/n"` (or
//! `--shard k/n`) makes an instance take the series whose id hashes to `k` modulo `n`, in the
//! spirit of Prometheus' `hashmod` relabelling.
//!
//! The hash is 64-bit FNV-1a over the series id's UTF-8 bytes (`<query name>{<labels sorted>}`
//! for PromQL series, `<category>/<file>` for NAB): stable across versions, machines and
//! restarts, so every series has exactly one owner as long as the instances share `n` and their
//! query list. Written by hand: FNV-1a is five lines and a dependency for it would not be.

use std::fmt;
use std::str::FromStr;

/// One shard of `count`: series with `fnv1a64(id) % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Shard {
    /// Whether this shard owns the series `id`.
    pub fn owns(&self, id: &str) -> bool {
        fnv1a64(id.as_bytes()) % self.count == self.index
    }

    /// `"" ` (no sharding) or `"k/n"`; errors say what is wrong.
    pub fn parse_setting(s: &str) -> Result<Option<Shard>, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse().map(Some)
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a shard: expected k/n with 0 <= k < n, e.g. \"0/2\"");
        let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!("1/3".parse(), Ok(Shard { index: 1, count: 3 }));
        for bad in ["3/2", "0/0", "a/b", "2", "-1/2", "1/2/3"] {
            let e = bad.parse::<Shard>().expect_err(bad);
            assert!(e.contains("k/n"), "{e}");
        }
        assert_eq!(Shard::parse_setting(""), Ok(None));
    }

    #[test]
    fn every_series_has_exactly_one_owner_and_the_hash_is_fixed() {
        // FNV-1a test vectors: the hash must never change between versions.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let shards: Vec<Shard> = (0..3).map(|k| Shard { index: k, count: 3 }).collect();
        let mut per = [0usize; 3];
        for i in 0..3000 {
            let id = format!("synth{{series=\"s{i:06}\"}}");
            let owners: Vec<usize> = (0..3).filter(|&k| shards[k].owns(&id)).collect();
            assert_eq!(owners.len(), 1, "{id}");
            per[owners[0]] += 1;
        }
        assert!(per.iter().all(|&c| c > 850), "balanced: {per:?}");
    }
}
