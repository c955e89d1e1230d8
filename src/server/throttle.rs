//! Failed sign-ins per client address: a wrong token (by form, bearer header or cookie)
//! counts; beyond `[server] sign_in_attempts_per_minute` in a minute, 429 until the minute
//! is over. The table is bounded: at most [`MAX_TRACKED`] addresses are remembered.

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

/// The client's address (set by the listener; unspecified in in-process tests).
fn ip_of(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

pub fn client_ip(req: &Request) -> IpAddr {
    ip_of(req.extensions())
}

/// The client's address as an extractor.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(ip_of(&parts.extensions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
