//! Where a token may be used from: a list of CIDRs (IPv4 and IPv6); empty for anywhere.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone, Default, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct IpAllowlist {
    nets: Vec<IpNet>,
    /// The stored form, `10.0.0.0/8,2001:db8::/32`.
    stored: String,
}

super::sql::text_column!(IpAllowlist);

impl IpAllowlist {
    pub const MAX: usize = 100;

    pub fn new(raw: impl IntoIterator<Item = impl AsRef<str>>) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in raw {
            let item = item.as_ref().trim();
            if item.is_empty() {
                continue;
            }
            // A bare address is the network of that one address.
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!(
                        "\"{}\" is not a CIDR such as 203.0.113.0/24 or 2001:db8::/32.",
                        item.chars().take(60).collect::<String>()
                    )
                })?;
            nets.push(net.trunc());
        }
        nets.sort();
        nets.dedup();
        if nets.len() > Self::MAX {
            return Err(format!("at most {} CIDRs are allowed.", Self::MAX));
        }
        let stored = nets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Ok(Self { nets, stored })
    }

    /// The stored or typed form: CIDRs separated by commas or spaces.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::new(raw.split([',', ' ', '\n', '\r', '\t']))
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether a call from `ip` is allowed: always with an empty list; never from an
    /// unknown address with a list. An IPv4-mapped IPv6 address is judged as IPv4.
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        if self.nets.is_empty() {
            return true;
        }
        let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
            return false;
        };
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// Whether every address `self` allows, `other` allows too.
    pub fn within(&self, other: &IpAllowlist) -> bool {
        other.nets.is_empty()
            || (!self.nets.is_empty()
                && self
                    .nets
                    .iter()
                    .all(|mine| other.nets.iter().any(|theirs| theirs.contains(mine))))
    }

    pub fn names(&self) -> Vec<String> {
        self.nets.iter().map(ToString::to_string).collect()
    }

    pub fn as_str(&self) -> &str {
        &self.stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn addresses_inside_a_cidr_are_allowed() {
        let list = IpAllowlist::parse("10.1.0.0/16, 2001:db8::/32 192.0.2.7").unwrap();
        assert!(list.allows(ip("10.1.200.3")));
        assert!(list.allows(ip("::ffff:10.1.0.1")));
        assert!(list.allows(ip("2001:db8::1")));
        assert!(list.allows(ip("192.0.2.7")));
        assert!(!list.allows(ip("10.2.0.1")));
        assert!(!list.allows(ip("192.0.2.8")));
        assert!(!list.allows(None));
        assert!(IpAllowlist::default().allows(None));
        assert_eq!(list.as_str(), "10.1.0.0/16,192.0.2.7/32,2001:db8::/32");
    }

    #[test]
    fn a_list_within_another_allows_nothing_more() {
        let wide = IpAllowlist::parse("10.0.0.0/8").unwrap();
        let narrow = IpAllowlist::parse("10.1.0.0/16, 10.2.3.4").unwrap();
        assert!(narrow.within(&wide));
        assert!(!wide.within(&narrow));
        assert!(!IpAllowlist::default().within(&wide), "anywhere is wider");
        assert!(wide.within(&IpAllowlist::default()));
    }

    #[test]
    fn a_bad_cidr_is_named() {
        for bad in ["10.0.0.0/33", "10.0.0", "example.com", "::/129"] {
            assert!(IpAllowlist::parse(bad).unwrap_err().contains(bad), "{bad}");
        }
    }
}
