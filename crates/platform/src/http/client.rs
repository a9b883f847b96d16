//! Who a request comes from, for limits kept per address. A proxy on this very host (the
//! console in the same process, or a reverse proxy beside it) connects from loopback and says
//! in `X-Forwarded-For` whom it acts for; nobody else can connect from loopback, so only
//! there is the header believed — its last entry, the address that proxy saw.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// The client address of a request that reached us from `peer`.
pub fn client_address(headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
    client_address_behind(headers, peer, false)
}

/// The same, believing every peer when `only_proxies_reach_us` (a pod that only its proxy
/// may reach, by network policy).
pub fn client_address_behind(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    only_proxies_reach_us: bool,
) -> Option<IpAddr> {
    let peer = peer?;
    if !(peer.is_loopback() || only_proxies_reach_us) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .next_back()
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    Some(forwarded.unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_forwarded(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn only_a_loopback_peer_is_believed_and_then_its_last_hop() {
        let remote: IpAddr = "198.51.100.4".parse().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let spoofed = with_forwarded("203.0.113.9");
        assert_eq!(client_address(&spoofed, Some(remote)), Some(remote));
        let chain = with_forwarded("10.0.0.1, 203.0.113.9");
        assert_eq!(
            client_address(&chain, Some(local)),
            Some("203.0.113.9".parse().unwrap())
        );
        let junk = with_forwarded("not-an-address");
        assert_eq!(client_address(&junk, Some(local)), Some(local));
        // Only the last hop counts: a bad one is not skipped for an earlier, forgeable one.
        let bad_last = with_forwarded("203.0.113.9, junk");
        assert_eq!(client_address(&bad_last, Some(local)), Some(local));
        assert_eq!(client_address(&HeaderMap::new(), Some(local)), Some(local));
        assert_eq!(client_address(&HeaderMap::new(), None), None);
        let behind = client_address_behind(&spoofed, Some(remote), true);
        assert_eq!(behind, Some("203.0.113.9".parse().unwrap()));
    }
}
