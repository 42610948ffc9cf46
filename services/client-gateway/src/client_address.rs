//! The address a client calls from, as WSUS records it for every computer: the
//! connection's peer, or, when that peer is a trusted proxy or load balancer
//! (`WSUS_TRUSTED_PROXIES`), the address the proxies name in `X-Forwarded-For`, read from
//! the right past every trusted hop (each proxy appends the address it was called from).
//! Headers from anyone else are ignored. Only `X-Forwarded-For` is read: it is what the
//! usual proxies and ingress controllers write, and they pass a client's own `Forwarded`
//! on untouched, so reading that too would let a client choose its address. The trusted
//! list must hold the proxies only: a client whose own address is in it could prepend one.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

pub fn client_address(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    // Nearest hop last: each proxy appends the address it was called from.
    let hops = x_forwarded_for(headers).unwrap_or_default();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            // A hop that names no address ("unknown", an obfuscated name): the proxy that
            // wrote it is as far as anyone can tell.
            None => break,
            Some(a) => {
                client = canonical(*a);
                if !is_trusted(&client) {
                    break;
                }
            }
        }
    }
    Some(client)
}

/// An IPv4 address mapped into IPv6 (a dual-stack listener's peers) as plain IPv4.
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> + 'a {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok())
}

/// `X-Forwarded-For: 203.0.113.195, 70.41.3.18`, in order.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let hops: Vec<Option<IpAddr>> = header_values(headers, "x-forwarded-for")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(address)
        .collect();
    (!hops.is_empty()).then_some(hops)
}

/// An address as proxies write one: bare, with a port, IPv6 in brackets with or without
/// a port.
fn address(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).and_then(|a| a.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let trusted: Vec<IpNet> = vec!["10.42.0.0/16".parse().unwrap(), "192.0.2.7/32".parse().unwrap()];
        let xff = headers(&[("x-forwarded-for", "198.51.100.23, 10.42.1.9")]);
        #[rustfmt::skip]
        let table: &[(&str, &str, &HeaderMap, &[IpNet], &str)] = &[
            ("no proxy: the peer", "198.51.100.5", &HeaderMap::new(), &trusted, "198.51.100.5"),
            ("an untrusted peer's header is ignored", "198.51.100.5", &xff, &trusted, "198.51.100.5"),
            ("nothing is trusted by default", "10.42.0.3", &xff, &[], "10.42.0.3"),
            ("past every trusted hop", "10.42.0.3", &xff, &trusted, "198.51.100.23"),
            ("a trusted proxy that names nobody", "10.42.0.3", &HeaderMap::new(), &trusted, "10.42.0.3"),
            ("a forged first entry stays left of the real one", "192.0.2.7",
                &headers(&[("x-forwarded-for", "10.42.9.9, 203.0.113.4")]), &trusted, "203.0.113.4"),
            ("several X-Forwarded-For headers, in order", "10.42.0.3",
                &headers(&[("x-forwarded-for", "203.0.113.4"), ("x-forwarded-for", "10.42.7.7")]), &trusted, "203.0.113.4"),
            ("a client's own Forwarded is not read", "10.42.0.3",
                &headers(&[("forwarded", "for=203.0.113.60"), ("x-forwarded-for", "198.51.100.1")]),
                &trusted, "198.51.100.1"),
            ("IPv6 in brackets with a port", "10.42.0.3",
                &headers(&[("x-forwarded-for", "[2001:db8:cafe::17]:4711")]), &trusted, "2001:db8:cafe::17"),
            ("an address with a port", "10.42.0.3", &headers(&[("x-forwarded-for", "203.0.113.4:51000")]), &trusted, "203.0.113.4"),
            ("a hop that names no address: the proxy that wrote it", "10.42.0.3",
                &headers(&[("x-forwarded-for", "unknown, 10.42.5.5")]), &trusted, "10.42.5.5"),
            ("an IPv4-mapped peer is IPv4", "::ffff:198.51.100.5", &HeaderMap::new(), &trusted, "198.51.100.5"),
        ];
        for (why, peer, h, trusted, expected) in table {
            assert_eq!(client_address(Some(ip(peer)), h, trusted), Some(ip(expected)), "{why}");
        }
        assert_eq!(client_address(None, &xff, &trusted), None, "no connection info");
    }
}
