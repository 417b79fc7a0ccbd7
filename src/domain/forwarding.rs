//! The settings that say whose forwarding headers name the client, and in which header:
//! parsed with the rest of the configuration, read per request by `auth::client_addr`.

use std::net::IpAddr;

use ipnet::IpNet;

/// Which header a trusted proxy names the client in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientHeader {
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=…`.
    Forwarded,
}

impl ClientHeader {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            other => Err(format!(
                "\"{other}\" is not a header Keyward reads the client's address from; use x-forwarded-for or forwarded"
            )),
        }
    }
}

/// The loopback ranges: a proxy on the same host.
pub const DEFAULT_TRUSTED_PROXIES: &str = "127.0.0.0/8,::1/128";

/// A comma- or space-separated list of CIDRs or single addresses, such as
/// `10.0.0.0/8, 192.0.2.7`.
pub fn parse_proxies(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split([',', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    format!("\"{item}\" is not an address or a CIDR range such as 10.0.0.0/8")
                })
        })
        .collect()
}
