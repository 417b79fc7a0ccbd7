//! The client's address: the one answer the guard, the dashboard, the audit log, usage
//! and every per-address limit use.
//!
//! Without `--trust-forwarded-headers` it is the TCP peer: anyone can write a forwarding
//! header. With it, and only when the peer is one of the trusted proxies
//! (`KEYWARD_TRUSTED_PROXIES`, the loopback ranges unless set), the address is read from
//! `X-Forwarded-For` (or `Forwarded`, if configured instead) as nginx's
//! `real_ip_recursive on` reads it: walking from the right, past every hop that is itself
//! a trusted proxy, to the first that is not. Hops to its left were written by the client
//! and count for nothing, so a client can't choose the address it is known by.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, web};
use ipnet::IpNet;

use crate::config::Config;
use crate::domain::ClientHeader;

/// The header a trusted proxy names the client in.
fn header_name(header: ClientHeader) -> HeaderName {
    match header {
        ClientHeader::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
        ClientHeader::Forwarded => header::FORWARDED,
    }
}

/// The client's address for `req`, by the server's settings in the app's data; the peer's
/// when there are none.
pub fn of(req: &HttpRequest) -> Option<IpAddr> {
    match req.app_data::<web::Data<Config>>() {
        Some(config) => client_ip(req, config),
        None => req.peer_addr().map(|a| a.ip()),
    }
}

/// [`of`], as text for the audit log and the sessions page.
pub fn text_of(req: &HttpRequest) -> Option<String> {
    of(req).map(|ip| ip.to_string())
}

/// The client's address for `req` under `config`.
pub fn client_ip(req: &HttpRequest, config: &Config) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    if !config.trust_forwarded_headers {
        return peer;
    }
    let header = config.client_address_header;
    let hops = req
        .headers()
        .get_all(header_name(header))
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| hops_in(header, v))
        .collect::<Vec<_>>();
    peer.map(|peer| rightmost_untrusted(peer, &hops, &config.trusted_proxies))
}

/// The addresses a header lists, left to right, as written (parsed later).
fn hops_in(header: ClientHeader, value: &str) -> Vec<&str> {
    match header {
        ClientHeader::XForwardedFor => value.split(',').map(str::trim).collect(),
        ClientHeader::Forwarded => value
            .split(',')
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .map_or("", |(_, value)| value.trim())
            })
            .collect(),
    }
}

/// From the peer leftwards: each hop that is a trusted proxy passes us to the one it names.
/// The first untrusted one is the client. A hop that isn't an address (`unknown`, an
/// obfuscated name) ends the walk at the last address known.
fn rightmost_untrusted(peer: IpAddr, hops: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&canonical(ip)));
    let mut client = peer;
    for hop in hops.iter().rev() {
        if !is_trusted(client) {
            break;
        }
        match parse_hop(hop) {
            Some(ip) => client = ip,
            None => break,
        }
    }
    canonical(client)
}

/// An IPv4 address written as IPv6 (`::ffff:192.0.2.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or `[2001:db8::1]:4711`, quoted or not.
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim().trim_matches('"');
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            raw.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;
    use crate::domain::{DEFAULT_TRUSTED_PROXIES, parse_proxies};

    fn config(trust: bool, proxies: &str, header: ClientHeader) -> Config {
        let mut config = Config::for_database("unused.db");
        config.trust_forwarded_headers = trust;
        config.trusted_proxies = parse_proxies(proxies).unwrap();
        config.client_address_header = header;
        config
    }

    fn from(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let peer = SocketAddr::new(peer.parse().unwrap(), 5000);
        let mut req = TestRequest::default().peer_addr(peer);
        for (name, value) in headers {
            req = req.append_header((*name, *value));
        }
        req.to_http_request()
    }

    fn ip(raw: &str) -> Option<IpAddr> {
        Some(raw.parse().unwrap())
    }

    #[test]
    fn a_hop_is_read_with_or_without_its_port() {
        let cases = [
            ("192.0.2.1", Some("192.0.2.1")),
            ("192.0.2.1:4711", Some("192.0.2.1")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::1]:4711", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("\"[2001:db8::1]:4711\"", Some("2001:db8::1")),
            ("unknown", None),
            ("_hidden", None),
            ("", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                parse_hop(raw),
                expected.map(|e| e.parse::<IpAddr>().unwrap()),
                "{raw:?}"
            );
        }
    }

    /// The peer, the headers it sent, and the client the server should see.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client_whatever_the_client_wrote() {
        let xff = config(true, "127.0.0.0/8, 10.0.0.0/8", ClientHeader::XForwardedFor);
        let cases: &[Case] = &[
            // No header: the peer.
            ("127.0.0.1", &[], "127.0.0.1"),
            // One proxy appended the client.
            (
                "127.0.0.1",
                &[("x-forwarded-for", "203.0.113.66")],
                "203.0.113.66",
            ),
            // The client wrote its own entry first: the proxy's appended one wins.
            (
                "127.0.0.1",
                &[("x-forwarded-for", "198.51.100.1, 203.0.113.66")],
                "203.0.113.66",
            ),
            // Two trusted proxies: walk past the inner one.
            (
                "127.0.0.1",
                &[("x-forwarded-for", "198.51.100.1, 203.0.113.66, 10.1.2.3")],
                "203.0.113.66",
            ),
            // Several header lines are one list, in order.
            (
                "127.0.0.1",
                &[
                    ("x-forwarded-for", "198.51.100.1"),
                    ("x-forwarded-for", "203.0.113.66"),
                ],
                "203.0.113.66",
            ),
            // Every hop trusted: the leftmost.
            (
                "127.0.0.1",
                &[("x-forwarded-for", "10.9.9.9, 10.1.1.1")],
                "10.9.9.9",
            ),
            // A garbage hop ends the walk at the last address known.
            (
                "127.0.0.1",
                &[("x-forwarded-for", "198.51.100.1, unknown")],
                "127.0.0.1",
            ),
            // A peer that is no trusted proxy is the client, whatever it sends.
            (
                "203.0.113.9",
                &[("x-forwarded-for", "198.51.100.1")],
                "203.0.113.9",
            ),
            // With X-Forwarded-For configured, a client's Forwarded counts for nothing.
            (
                "127.0.0.1",
                &[
                    ("forwarded", "for=198.51.100.1"),
                    ("x-forwarded-for", "203.0.113.66"),
                ],
                "203.0.113.66",
            ),
            (
                "::ffff:127.0.0.1",
                &[("x-forwarded-for", "203.0.113.66")],
                "203.0.113.66",
            ),
        ];
        for (peer, headers, expected) in cases {
            assert_eq!(
                client_ip(&from(peer, headers), &xff),
                ip(expected),
                "{peer} {headers:?}"
            );
        }
    }

    #[test]
    fn forwarded_is_read_only_when_configured_and_trust_is_on() {
        let headers = [
            (
                "forwarded",
                "for=198.51.100.1, for=\"[2001:db8::7]:443\";proto=https",
            ),
            ("x-forwarded-for", "203.0.113.66"),
        ];
        let forwarded = config(true, DEFAULT_TRUSTED_PROXIES, ClientHeader::Forwarded);
        assert_eq!(
            client_ip(&from("127.0.0.1", &headers), &forwarded),
            ip("2001:db8::7")
        );
        let off = config(false, DEFAULT_TRUSTED_PROXIES, ClientHeader::Forwarded);
        assert_eq!(
            client_ip(&from("127.0.0.1", &headers), &off),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn proxies_are_cidrs_or_addresses_and_anything_else_is_named() {
        let nets = parse_proxies("10.0.0.0/8, 192.0.2.7 ::1").unwrap();
        assert_eq!(nets.len(), 3);
        assert!(nets[1].contains(&"192.0.2.7".parse::<IpAddr>().unwrap()));
        assert_eq!(parse_proxies("").unwrap(), []);
        let err = parse_proxies("10.0.0.0/8, nginx").unwrap_err();
        assert!(err.contains("\"nginx\""), "{err}");
        assert!(parse_proxies("10.0.0.0/33").is_err());
        assert!(ClientHeader::parse("X-Real-IP").is_err());
        assert_eq!(
            ClientHeader::parse("Forwarded"),
            Ok(ClientHeader::Forwarded)
        );
    }
}
