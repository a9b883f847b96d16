//! Where webhooks may go: public HTTPS addresses only, so a subscription cannot make this
//! service call into the cluster or the cloud's metadata endpoint (server-side request
//! forgery). Checked when a URL is given (its form and any literal address) and again on
//! every attempt, where names are resolved by [`GuardedResolver`] and the connection goes
//! to the address that was checked (no second lookup a DNS answer could change). Redirects
//! are never followed. With `allow_loopback` (development and tests) plain HTTP to this
//! machine is allowed as well; private and link-local addresses never are.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a URL is refused, said to the person who gave it.
pub fn check_url(raw: &str, allow_loopback: bool) -> Result<Url, String> {
    if raw.len() > 2048 {
        return Err("url is at most 2048 characters".into());
    }
    let url = Url::parse(raw).map_err(|err| format!("url is not a URL: {err}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url must not carry credentials (the signature authenticates us)".into());
    }
    let host = url
        .host_str()
        .ok_or_else(|| "url needs a host".to_string())?;
    let literal = literal_ip(&url);
    let loopback_host = match literal {
        Some(ip) => is_loopback(ip),
        None => is_localhost_name(host),
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback && loopback_host => {}
        "http" if allow_loopback => {
            return Err("url must be https (plain http only to this machine)".into());
        }
        "http" => return Err("url must be https".into()),
        other => return Err(format!("url must be https, not {other}")),
    }
    if let Some(ip) = literal {
        allowed(ip, allow_loopback)?;
    } else if loopback_host && !allow_loopback {
        return Err(format!("url must be a public address, not {host}"));
    }
    Ok(url)
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

fn is_localhost_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Whether `ip` may be called: public, or loopback when allowed.
pub fn allowed(ip: IpAddr, allow_loopback: bool) -> Result<(), String> {
    if is_loopback(ip) {
        return if allow_loopback {
            Ok(())
        } else {
            Err(format!("{ip} is a loopback address"))
        };
    }
    match non_public(ip) {
        Some(kind) => Err(format!("{ip} is {kind}, not a public address")),
        None => Ok(()),
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match embedded_v4(ip) {
        Some(v4) => v4.is_loopback(),
        None => ip.is_loopback(),
    }
}

/// An IPv4 address carried in an IPv6 one (mapped, or NAT64's well-known prefix), which
/// reaches the IPv4 host.
fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().or_else(|| {
            let s = v6.segments();
            (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0]).then(|| {
                let [.., a, b, c, d] = v6.octets();
                Ipv4Addr::new(a, b, c, d)
            })
        }),
    }
}

/// What kind of non-public address `ip` is, if it is one.
fn non_public(ip: IpAddr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return non_public_v4(v4);
    }
    let IpAddr::V6(v6) = ip else { return None };
    non_public_v6(v6)
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local (cloud metadata lives here)",
        (100, 64..=127, _) => "shared address space (carrier NAT)",
        (192, 0, 0) => "IETF protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() || a >= 240 => "reserved",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(match s[0] {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        0xfc00..=0xfdff => "unique local (private)",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        0x2001 if s[1] == 0x0db8 => "documentation",
        0x0100 if s[1..4] == [0, 0, 0] => "discard-only",
        _ => return None,
    })
}

/// Resolves names for the webhook client and refuses, before any connection, a name with
/// any address that may not be called (a name pointing at both a public and a private
/// address is refused, not half-trusted).
pub struct GuardedResolver {
    pub allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            for addr in &addrs {
                allowed(addr.ip(), allow_loopback).map_err(|why| format!("{host}: {why}"))?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_passes_outside_development() {
        assert!(check_url("https://hooks.example.com/vivesphere", false).is_ok());
        assert!(check_url("https://93.184.216.34/x", false).is_ok());
        for refused in [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://api.localhost/x",
            "https://10.0.0.5/x",
            "https://172.16.3.4/x",
            "https://192.168.1.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[::ffff:169.254.169.254]/x",
            "https://[64:ff9b::a9fe:a9fe]/x",
            "https://user:pass@hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "not a url",
        ] {
            assert!(check_url(refused, false).is_err(), "{refused} passed");
        }
    }

    #[test]
    fn development_adds_loopback_over_http_and_nothing_else() {
        assert!(check_url("http://127.0.0.1:8080/hook", true).is_ok());
        assert!(check_url("http://localhost:8080/hook", true).is_ok());
        assert!(check_url("http://[::1]:8080/hook", true).is_ok());
        assert!(check_url("http://hooks.example.com/x", true).is_err());
        assert!(check_url("http://10.0.0.5/x", true).is_err());
        assert!(check_url("https://169.254.169.254/x", true).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_that_lead_inside() {
        let strict = GuardedResolver {
            allow_loopback: false,
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(strict.resolve(name).await.is_err());
        let relaxed = GuardedResolver {
            allow_loopback: true,
        };
        let name: Name = "localhost".parse().unwrap();
        let addrs: Vec<SocketAddr> = relaxed.resolve(name).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
