//! Which addresses push may reach (SSRF).
//!
//! Security rules kept here:
//! - a webhook URL is `http` or `https`, with a host and no user info;
//! - it must not reach loopback, private (RFC 1918, ULA), link-local, CGNAT, multicast,
//!   documentation, benchmarking or unspecified addresses, nor IPv4 addresses mapped or
//!   translated into IPv6, unless `[push] allow_networks` in gateway.toml lists the network;
//! - the rule is checked when the config is made (so the caller hears at once) **and** on every
//!   connection: names are resolved by a resolver that drops forbidden addresses, so a name
//!   that changes its answer after the check (DNS rebinding) still cannot reach them;
//! - redirects are not followed unless `[push] follow_redirects` says so, and then each target
//!   passes the same rule; no proxy from the environment is used.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

/// Which addresses webhooks may reach.
#[derive(Debug, Clone)]
pub struct Policy {
    allow: Vec<IpNet>,
}

impl Policy {
    /// The rule with `allow` as exceptions.
    pub fn new(allow: Vec<IpNet>) -> Policy {
        Policy { allow }
    }

    /// Why `ip` may not be reached, or `None` when it may.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        forbidden(ip)
    }
}

/// The class of address push never reaches by default, if `ip` is one.
fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6.is_loopback() {
                Some("a loopback address")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("a private (unique local) address")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("a documentation address")
            } else if s[0] == 0x64 && s[1] == 0xff9b {
                // NAT64 reaches the embedded IPv4 address.
                Some("a NAT64 address")
            } else if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0xffff && s[5] == 0 {
                // IPv4-translated (::ffff:0:a.b.c.d).
                Some("an IPv4-translated address")
            } else if s[0] == 0x2002 {
                // 6to4 carries an IPv4 address and reaches it through a relay.
                Some("a 6to4 address")
            } else if s[0] == 0x2001 && s[1] == 0 {
                Some("a Teredo address")
            } else if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0 {
                Some("an IPv4-compatible address")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_unspecified() || o[0] == 0 {
        Some("the unspecified network")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("a shared (CGNAT) address")
    } else if ip.is_multicast() || o[0] >= 240 {
        Some("a multicast or reserved address")
    } else if ip.is_documentation() {
        Some("a documentation address")
    } else if o[0] == 198 && (o[1] == 18 || o[1] == 19) {
        Some("a benchmarking address")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("an IETF protocol assignment")
    } else {
        None
    }
}

/// Longest a webhook host lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves names for webhook connections, dropping every address the policy refuses.
pub(super) struct GuardedResolver(pub(super) Arc<Policy>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> =
                tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host.as_str(), 0)))
                    .await
                    .map_err(|_| format!("looking up {host} took longer than {} s", LOOKUP_TIMEOUT.as_secs()))??
                    .collect();
            let ok: Vec<SocketAddr> = all.iter().copied().filter(|a| policy.refuses(a.ip()).is_none()).collect();
            if ok.is_empty() {
                let why = all.first().and_then(|a| policy.refuses(a.ip())).unwrap_or("no address");
                return Err(format!("{host} resolves only to addresses push may not reach ({why})").into());
            }
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Checks a webhook URL against the rules; resolves its host now so a refusal is told at once.
pub async fn check_url(policy: &Policy, raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("url {raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("url {raw:?}: only http and https webhooks are allowed"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("url {raw:?}: user info in the URL is not allowed; use authentication"));
    }
    let host = match url.host() {
        None => return Err(format!("url {raw:?} has no host")),
        Some(url::Host::Ipv4(ip)) => return refuse_ip(policy, raw, IpAddr::V4(ip)).map(|()| url),
        Some(url::Host::Ipv6(ip)) => return refuse_ip(policy, raw, IpAddr::V6(ip)).map(|()| url),
        Some(url::Host::Domain(d)) => d.to_string(),
    };
    // A name that does not resolve now is accepted: DNS may be down or the receiver not yet
    // published, and delivery resolves again through the guarded resolver (and retries). A name
    // that resolves must resolve to allowed addresses only.
    let port = url.port_or_known_default().unwrap_or(443);
    if let Ok(Ok(addrs)) = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host.as_str(), port))).await {
        for a in addrs {
            // The address itself is not told: callers could map internal names with it.
            if let Some(why) = policy.refuses(a.ip()) {
                return Err(format!(
                    "url {raw:?}: {host} resolves to {why}: webhooks may not target it (gateway.toml [push] allow_networks makes exceptions)"
                ));
            }
        }
    }
    Ok(url)
}

fn refuse_ip(policy: &Policy, raw: &str, ip: IpAddr) -> Result<(), String> {
    match policy.refuses(ip) {
        None => Ok(()),
        Some(why) => Err(format!(
            "url {raw:?} reaches {ip}, {why}: webhooks may not target it (gateway.toml [push] allow_networks makes exceptions)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_rule() {
        let p = Policy::new(Vec::new());
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(p.refuses(bad.parse().unwrap()).is_some(), "{bad} must be refused");
        }
        for good in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert_eq!(p.refuses(good.parse().unwrap()), None, "{good} must be allowed");
        }
        let p = Policy::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert_eq!(p.refuses("127.0.0.1".parse().unwrap()), None);
        assert!(p.refuses("127.0.0.2".parse().unwrap()).is_some());
    }

    #[tokio::test]
    async fn urls_are_checked() {
        let p = Policy::new(Vec::new());
        for (url, says) in [
            ("ftp://example.com/x", "only http and https"),
            ("http://user:pw@93.184.216.34/", "user info"),
            ("http://127.0.0.1:9/hook", "loopback"),
            ("http://[::1]/hook", "loopback"),
            ("http://10.0.0.7/hook", "private"),
            ("http://169.254.169.254/latest/meta-data", "link-local"),
            ("http://localhost:9/hook", "loopback"),
            ("not a url", "not a URL"),
        ] {
            let e = check_url(&p, url).await.unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
        // A name's addresses are not told (callers could map internal names with them).
        let e = check_url(&p, "http://localhost:9/hook").await.unwrap_err();
        assert!(!e.contains("127.0.0.1") && !e.contains("::1"), "{e}");
        assert!(check_url(&p, "https://93.184.216.34/hook").await.is_ok());
        // Not resolvable now: accepted; delivery resolves (and checks) again.
        assert!(check_url(&p, "https://no-such-host.invalid/hook").await.is_ok());
    }
}
