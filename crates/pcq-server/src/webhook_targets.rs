//! Which addresses webhook events may be delivered to.
//!
//! A shared pcq must not become a way for partners to reach its own network (SSRF): unless
//! private targets are allowed, registrations naming a private, loopback or link-local address
//! are refused, and host names are resolved by a resolver that drops such addresses, so a name
//! that points inside cannot be used either (also not by re-resolving between check and use).
//! A pcq listening on loopback (a developer's sandbox) allows them by default, since the
//! receiver under test usually runs on the same machine.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `ip` is a globally reachable unicast address: one the IANA special-purpose
/// registries (IPv4, IPv6) do not mark as not globally reachable, and, for IPv6, one in the
/// global unicast space (`2000::/3`). IPv6 addresses that carry an IPv4 address (IPv4-mapped,
/// the NAT64 well-known prefix, 6to4) are judged by the address they carry; the other forms
/// that embed one (IPv4-compatible, IPv4-translated, local-use NAT64, Teredo) are refused.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// An address block: the network's first address and the prefix length.
type Block<T> = (T, u8);

/// The IPv4 special-purpose registry's blocks that are not globally reachable, with the
/// blocks no unicast target lies in (multicast, the limited broadcast within 240.0.0.0/4).
const NOT_GLOBAL_V4: &[Block<[u8; 4]>] = &[
    ([0, 0, 0, 0], 8),       // "this network" (RFC 791)
    ([10, 0, 0, 0], 8),      // private use (RFC 1918)
    ([100, 64, 0, 0], 10),   // shared address space (RFC 6598)
    ([127, 0, 0, 0], 8),     // loopback (RFC 1122)
    ([169, 254, 0, 0], 16),  // link local (RFC 3927)
    ([172, 16, 0, 0], 12),   // private use (RFC 1918)
    ([192, 0, 0, 0], 24),    // IETF protocol assignments (RFC 6890), DS-Lite, NAT64 discovery
    ([192, 0, 2, 0], 24),    // documentation, TEST-NET-1 (RFC 5737)
    ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast (RFC 7526)
    ([192, 168, 0, 0], 16),  // private use (RFC 1918)
    ([198, 18, 0, 0], 15),   // benchmarking (RFC 2544)
    ([198, 51, 100, 0], 24), // documentation, TEST-NET-2 (RFC 5737)
    ([203, 0, 113, 0], 24),  // documentation, TEST-NET-3 (RFC 5737)
    ([224, 0, 0, 0], 4),     // multicast (RFC 5771)
    ([240, 0, 0, 0], 4),     // reserved (RFC 1112), with the limited broadcast address
];

/// Blocks inside [`NOT_GLOBAL_V4`] that the registry marks globally reachable.
const GLOBAL_V4: &[Block<[u8; 4]>] = &[
    ([192, 0, 0, 9], 32),  // Port Control Protocol anycast (RFC 7723)
    ([192, 0, 0, 10], 32), // TURN anycast (RFC 8155)
];

/// The IPv6 special-purpose registry's blocks inside `2000::/3` that are not globally
/// reachable (everything outside `2000::/3` is refused already: loopback, unspecified,
/// IPv4-compatible and -translated forms, discard-only and dummy prefixes, unique local,
/// link-local, the deprecated site-local, multicast and the unallocated space).
const NOT_GLOBAL_V6: &[Block<[u16; 8]>] = &[
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments (RFC 2928), Teredo
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation (RFC 3849)
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation (RFC 9637)
    ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), // segment routing SIDs (RFC 9602)
];

/// Blocks inside [`NOT_GLOBAL_V6`] that the registry marks globally reachable.
const GLOBAL_V6: &[Block<[u16; 8]>] = &[
    ([0x2001, 0x1, 0, 0, 0, 0, 0, 0x1], 128), // Port Control Protocol anycast (RFC 7723)
    ([0x2001, 0x1, 0, 0, 0, 0, 0, 0x2], 128), // TURN anycast (RFC 8155)
    ([0x2001, 0x1, 0, 0, 0, 0, 0, 0x3], 128), // DNS-SD service registration anycast (RFC 9665)
    ([0x2001, 0x3, 0, 0, 0, 0, 0, 0], 32),    // AMT (RFC 7450)
    ([0x2001, 0x4, 0x112, 0, 0, 0, 0, 0], 48), // AS112-v6 (RFC 7535)
    ([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28),   // ORCHIDv2 (RFC 7343)
    ([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28),   // drone remote ID (RFC 9374)
];

fn in_block_v4(ip: Ipv4Addr, blocks: &[Block<[u8; 4]>]) -> bool {
    let bits = u32::from(ip);
    blocks.iter().any(|&(net, len)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        bits & mask == u32::from(Ipv4Addr::from(net)) & mask
    })
}

fn in_block_v6(ip: Ipv6Addr, blocks: &[Block<[u16; 8]>]) -> bool {
    let bits = u128::from(ip);
    blocks.iter().any(|&(net, len)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        bits & mask == u128::from(Ipv6Addr::from(net)) & mask
    })
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !in_block_v4(ip, NOT_GLOBAL_V4) || in_block_v4(ip, GLOBAL_V4)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let o = ip.octets();
    let carried = |at: usize| Ipv4Addr::new(o[at], o[at + 1], o[at + 2], o[at + 3]);
    // IPv4-mapped (::ffff:0:0/96): the IPv4 address itself on a dual-stack socket.
    if s[..6] == [0, 0, 0, 0, 0, 0xffff] {
        return is_public_v4(carried(12));
    }
    // The NAT64 well-known prefix (64:ff9b::/96) is globally reachable: through a translator
    // it reaches the IPv4 address it carries.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(carried(12));
    }
    // 6to4 (2002::/16) carries the IPv4 address of its relay in its next 32 bits.
    if s[0] == 0x2002 {
        return is_public_v4(carried(2));
    }
    // Global unicast is 2000::/3; the rest of the space is special or unallocated.
    (s[0] & 0xe000) == 0x2000 && (!in_block_v6(ip, NOT_GLOBAL_V6) || in_block_v6(ip, GLOBAL_V6))
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

/// How a webhook URL appears in logs: scheme, host, port and path, never a user name,
/// password, query or fragment (they may hold secrets).
pub fn loggable(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or_default();
            match parsed.port() {
                Some(port) => format!("{}://{host}:{port}{}", parsed.scheme(), parsed.path()),
                None => format!("{}://{host}{}", parsed.scheme(), parsed.path()),
            }
        }
        Err(_) => "(an unparsable URL)".to_owned(),
    }
}

/// Whether `url` carries a user name or password, which pcq never sends (registrations with
/// them are refused; this guards URLs stored before that).
pub fn has_credentials(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| !u.username().is_empty() || u.password().is_some())
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
            "::127.0.0.1",
            "::7f00:1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:808:808",
            "64:ff9b:1::7f00:1",
            "64:ff9b:1::808:808",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2001::7f00:1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:10::1",
            "3fff::1",
            "5f00::1",
            "fec0::1",
            "100::1",
            "100:0:0:1::1",
            "::808:808",
            "4000::1",
            "192.0.0.8",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "198.51.100.1",
            "203.0.113.1",
            "100.127.255.255",
            "172.31.255.255",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
            "2002:808:808::1",
            "2001:4860:4860::8888",
            "2001:1::1",
            "2001:4:112::1",
            "192.0.0.9",
            "192.31.196.1",
            "100.128.0.1",
            "172.32.0.1",
            "198.20.0.1",
            "223.255.255.255",
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
        for embedded in [
            "http://[::127.0.0.1]/x",
            "http://[::7f00:1]/x",
            "http://[::ffff:0:127.0.0.1]/x",
            "http://[64:ff9b:1::7f00:1]/x",
            "http://[2002:7f00:1::]/x",
            "http://[2001::7f00:1]/x",
            "http://[fec0::1]/x",
            "http://[100::1]/x",
        ] {
            assert!(refused_literal(embedded).is_some(), "{embedded}");
        }
    }

    #[test]
    fn logged_urls_carry_no_credentials_or_query() {
        assert_eq!(
            loggable("https://user:hunter2@hooks.example.com:8443/pc/in?key=s3cret#x"),
            "https://hooks.example.com:8443/pc/in"
        );
        assert_eq!(loggable("http://[::1]/x?y"), "http://[::1]/x");
        assert_eq!(loggable("not a url hunter2"), "(an unparsable URL)");
        assert!(has_credentials("https://user:pw@x/"));
        assert!(has_credentials("https://user@x/"));
        assert!(has_credentials("https://:pw@x/"));
        assert!(!has_credentials("https://x/?user=a@b"));
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
