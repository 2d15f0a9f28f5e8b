//! Addresses behind reverse proxies: blocks of addresses (`10.0.0.0/8`, `::1`) and the rule
//! that finds the client's address in `X-Forwarded-For`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One address, or a CIDR block of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressBlock {
    network: IpAddr,
    prefix: u8,
}

impl AddressBlock {
    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for AddressBlock {
    type Err = String;

    /// `192.0.2.7`, `10.0.0.0/8`, `::1` or `fd00::/8`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let refused = || format!("{s:?} is not an IP address or a CIDR block like 10.0.0.0/8");
        let (address, prefix) = match s.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (s, None),
        };
        let network = IpAddr::from_str(address)
            .map_err(|_| refused())?
            .to_canonical();
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(refused)?,
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for AddressBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The client's address: the TCP peer's, unless the peer is a trusted proxy; then the
/// right-most address of `X-Forwarded-For` (its header lines in order) that is not itself
/// a trusted proxy. Each proxy appends the address it saw, so only the entries to the right
/// of the first untrusted one are believed: a client cannot choose its bucket by sending
/// the header itself. An entry that is not an address ends the search at the nearest
/// trusted hop; entries that are all trusted give the left-most.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[AddressBlock],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|block| block.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = forwarded_address(hop) else {
            return nearest;
        };
        if !is_trusted(ip) {
            return ip;
        }
        nearest = ip;
    }
    nearest
}

/// An address as proxies write it in `X-Forwarded-For`: bare, `v4:port` or `[v6]:port`.
fn forwarded_address(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(ip.to_canonical());
    }
    let host = match hop.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => hop.rsplit_once(':')?.0,
    };
    IpAddr::from_str(host).ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn blocks(list: &[&str]) -> Vec<AddressBlock> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn blocks_contain_their_addresses_and_no_others() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.7", "192.0.2.8", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("127.0.0.1", "::ffff:127.0.0.1", true),
            ("::1", "::1", true),
            ("fd00::/8", "fd12:3456::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::/0", "2001:db8::1", true),
            ("::/0", "192.0.2.1", false),
        ];
        for (block, address, expected) in cases {
            let parsed: AddressBlock = block.parse().unwrap();
            assert_eq!(
                parsed.contains(ip(address)),
                expected,
                "{block} contains {address}"
            );
        }
    }

    #[test]
    fn malformed_blocks_are_refused_with_the_value() {
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "::1/129",
            "1.2.3.4/-1",
        ] {
            let err = bad.parse::<AddressBlock>().unwrap_err();
            assert!(err.contains(&format!("{:?}", bad.trim())), "{err}");
        }
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop_behind_a_trusted_peer() {
        let trusted = blocks(&["127.0.0.1", "10.0.0.0/8"]);
        let cases: &[(&str, &[&str], &str)] = &[
            // An untrusted peer: its header is ignored.
            ("203.0.113.5", &["198.51.100.1"], "203.0.113.5"),
            // A trusted peer without the header: the peer.
            ("127.0.0.1", &[], "127.0.0.1"),
            ("127.0.0.1", &["198.51.100.1"], "198.51.100.1"),
            // A client that sends its own header cannot choose: the proxy appends.
            ("127.0.0.1", &["1.1.1.1, 198.51.100.1"], "198.51.100.1"),
            // Two proxies of ours, in two header lines.
            (
                "127.0.0.1",
                &["198.51.100.1, 10.0.0.2", "10.0.0.3"],
                "198.51.100.1",
            ),
            ("127.0.0.1", &["198.51.100.1:4711"], "198.51.100.1"),
            ("127.0.0.1", &["[2001:db8::7]:4711"], "2001:db8::7"),
            ("::ffff:127.0.0.1", &["2001:db8::7"], "2001:db8::7"),
            // Garbage from the nearest proxy: its sender is the nearest trusted hop.
            (
                "127.0.0.1",
                &["198.51.100.1, unknown, 10.0.0.2"],
                "10.0.0.2",
            ),
            // Every hop trusted: the left-most.
            ("127.0.0.1", &["10.0.0.9, 10.0.0.2"], "10.0.0.9"),
        ];
        for (peer, header, expected) in cases {
            assert_eq!(
                client_address(ip(peer), header.iter().copied(), &trusted),
                ip(expected),
                "peer {peer}, X-Forwarded-For {header:?}"
            );
        }
        assert_eq!(
            client_address(ip("127.0.0.1"), ["198.51.100.1"], &[]),
            ip("127.0.0.1"),
            "no trusted proxies: always the peer"
        );
    }
}
