//! Failed sign-ins per client address: a wrong token (by form or bearer header) counts;
//! beyond `[server] sign_in_attempts_per_minute` in a minute, wrong tokens get 429 until the
//! minute is over (the right token is always let through: others' guesses never lock a user
//! out). The table is bounded: at most [`MAX_TRACKED`] addresses are remembered.
//!
//! The client's address is the connection's, or, when the connection comes from one of
//! `[server] trusted_proxies`, the last address in `X-Forwarded-For` that is not a trusted
//! proxy (a client can put anything at the start of that header, never at its end).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};

/// Failed sign-ins per client address in the current minute.
pub struct Attempts {
    per_minute: u32,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Addresses remembered at most; older entries are forgotten first.
const MAX_TRACKED: usize = 4096;
const WINDOW: Duration = Duration::from_secs(60);

impl Attempts {
    pub fn new(per_minute: u32) -> Attempts {
        Attempts {
            per_minute: per_minute.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait when `ip` has used up its attempts.
    pub fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (start, n) = seen.get(&ip)?;
        let left = WINDOW.checked_sub(start.elapsed())?;
        (*n >= self.per_minute).then(|| left.as_secs().max(1))
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_TRACKED {
            seen.retain(|_, (start, _)| start.elapsed() < WINDOW);
            if seen.len() >= MAX_TRACKED {
                seen.clear();
            }
        }
        let entry = seen.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct Proxies(Vec<ipnet::IpNet>);

impl Proxies {
    /// From `[server] trusted_proxies`: IPs or CIDR blocks.
    pub fn parse(list: &[String]) -> Result<Proxies, String> {
        let nets = list
            .iter()
            .map(|p| {
                let p = p.trim();
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!(
                            "[server] trusted_proxies: `{}` is neither an IP address nor a CIDR block (e.g. 10.0.0.0/8)",
                            rfm_core::bounded::value(p, 64)
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Proxies(nets))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that reached us from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) if self.trusts(ip) => continue,
                Some(ip) => return ip,
                None => return peer,
            }
        }
        peer
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The connection's address (set by the listener; unspecified in in-process tests).
fn peer_of(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

pub fn client_ip(req: &Request, proxies: &Proxies) -> IpAddr {
    proxies.client(peer_of(req.extensions()), req.headers())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxies = Proxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.9, 10.1.2.3".parse().unwrap(),
        );
        let local = IpAddr::from([127, 0, 0, 1]);
        assert_eq!(proxies.client(local, &h), IpAddr::from([203, 0, 113, 9]));
        let stranger = IpAddr::from([198, 51, 100, 7]);
        assert_eq!(
            proxies.client(stranger, &h),
            stranger,
            "not a proxy: its header is not believed"
        );
        h.insert("x-forwarded-for", "[2001:db8::1]:443".parse().unwrap());
        assert_eq!(
            proxies.client(local, &h),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        h.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(proxies.client(local, &h), local);
        assert!(Proxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert_eq!(Proxies::default().client(local, &h), local);
    }

    #[test]
    fn an_address_is_blocked_after_its_attempts_and_others_are_not() {
        let a = Attempts::new(3);
        let (one, two) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..2 {
            a.failed(one);
        }
        assert_eq!(a.blocked(one), None);
        a.failed(one);
        assert!(a.blocked(one).is_some_and(|s| (1..=60).contains(&s)));
        assert_eq!(a.blocked(two), None);
        for i in 0..(MAX_TRACKED as u32 + 10) {
            a.failed(IpAddr::from(i.to_be_bytes()));
        }
        assert!(
            a.seen.lock().unwrap().len() <= MAX_TRACKED,
            "the table stays bounded"
        );
    }
}
