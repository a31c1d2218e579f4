//! Which addresses webhook events may be delivered to.
//!
//! A shared pcq must not become a way for partners to reach its own network (SSRF): unless
//! private targets are allowed, registrations naming a private, loopback or link-local address
//! are refused, and host names are resolved by a resolver that drops such addresses, so a name
//! that points inside cannot be used either (also not by re-resolving between check and use).
//! A pcq listening on loopback (a developer's sandbox) allows them by default, since the
//! receiver under test usually runs on the same machine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let o = v6.octets();
                return is_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local
                || (segments[0] & 0xffc0) == 0xfe80 // link-local
                || (segments[0] == 0x2001 && segments[1] == 0x0db8)) // documentation
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || a >= 240) // reserved
}

/// Why a URL may not be used, when its host is an address (or `localhost`) that is not public,
/// or it cannot be parsed at all. The URL is parsed the way the delivery client parses it, so
/// spellings such as `http://2130706433/` or `http://0x7f.1/` are seen as the loopback
/// addresses they are.
pub fn refused_literal(url: &str) -> Option<String> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => return Some(format!("it is not a valid URL ({e})")),
    };
    // The parser has already normalised the host: IPv4 in dotted decimal, IPv6 in brackets.
    let host = parsed.host_str()?;
    let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return (!is_public(ip)).then(|| format!("{ip} is not a public address"));
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    (name == "localhost" || name.ends_with(".localhost"))
        .then(|| format!("'{name}' is this machine"))
}

/// A resolver that only hands out public addresses.
#[derive(Debug, Default)]
pub struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} has no public address; webhook targets must be public"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether private targets are allowed: as configured, else when pcq listens on loopback.
pub fn allow_private(configured: Option<bool>, listen: SocketAddr) -> bool {
    configured.unwrap_or_else(|| listen.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn literals_in_urls() {
        assert!(refused_literal("http://127.0.0.1:8080/x").is_some());
        assert!(refused_literal("http://[::1]:9/x").is_some());
        assert!(refused_literal("http://user@169.254.169.254/latest").is_some());
        assert!(refused_literal("http://LOCALHOST/x").is_some());
        assert!(refused_literal("https://hooks.example.com/x").is_none());
        assert!(refused_literal("https://1.1.1.1/x").is_none());
        assert!(refused_literal("http://2130706433/x").is_some());
        assert!(refused_literal("http://0x7f.1/x").is_some());
        assert!(refused_literal("http://localhost./x").is_some());
        assert!(refused_literal("http://[::ffff:7f00:1]/x").is_some());
    }

    #[test]
    fn the_default_follows_the_listen_address() {
        assert!(allow_private(None, "127.0.0.1:8080".parse().unwrap()));
        assert!(!allow_private(None, "0.0.0.0:8080".parse().unwrap()));
        assert!(allow_private(Some(true), "0.0.0.0:8080".parse().unwrap()));
        assert!(!allow_private(
            Some(false),
            "127.0.0.1:8080".parse().unwrap()
        ));
    }
}
