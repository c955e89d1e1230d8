//! Sign-in sessions, kept by the service: the dashboard's cookie holds a random session id,
//! never the token. Signing out ends the session at once, a session expires after
//! `[server] session_hours`, and a restart ends them all (sign in again). The table is
//! bounded: past [`MAX_SESSIONS`] the session closest to expiring is dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sessions kept at most.
pub const MAX_SESSIONS: usize = 10_000;

/// A session id: 32 random bytes, 64 hexadecimal digits in the cookie.
type Id = [u8; 32];

pub struct Sessions {
    lifetime: Duration,
    live: Mutex<HashMap<Id, Instant>>,
}

impl Sessions {
    pub fn new(lifetime: Duration) -> Sessions {
        Sessions {
            lifetime,
            live: Mutex::new(HashMap::new()),
        }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Starts a session; returns its id for the cookie.
    pub fn start(&self) -> String {
        use rand::RngCore;
        let mut id: Id = [0; 32];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, until| *until > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| *k)
        {
            live.remove(&oldest);
        }
        live.insert(id, now + self.lifetime);
        id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `cookie` names a session that has not ended or expired.
    pub fn valid(&self, cookie: &str) -> bool {
        let Some(id) = parse(cookie) else {
            return false;
        };
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(&id).is_some_and(|until| *until > Instant::now())
    }

    /// Ends the session `cookie` names, if any.
    pub fn end(&self, cookie: &str) {
        if let Some(id) = parse(cookie) {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            live.remove(&id);
        }
    }
}

fn parse(cookie: &str) -> Option<Id> {
    let bytes = cookie.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut id: Id = [0; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hex = std::str::from_utf8(pair).ok()?;
        id[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_until_it_ends_or_expires() {
        let s = Sessions::new(Duration::from_secs(60));
        let (a, b) = (s.start(), s.start());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(s.valid(&a) && s.valid(&b));
        s.end(&a);
        assert!(!s.valid(&a) && s.valid(&b));
        for bad in ["", "zz", &"0".repeat(64), &b[..63], &format!("{b}0")] {
            assert!(!s.valid(bad), "{bad}");
        }
        let short = Sessions::new(Duration::from_millis(1));
        let c = short.start();
        std::thread::sleep(Duration::from_millis(5));
        assert!(!short.valid(&c), "expired");
    }

    #[test]
    fn the_table_stays_bounded() {
        let s = Sessions::new(Duration::from_secs(60));
        let first = s.start();
        for _ in 0..MAX_SESSIONS {
            s.start();
        }
        assert!(s.live.lock().unwrap().len() <= MAX_SESSIONS);
        assert!(!s.valid(&first), "the oldest made room");
    }
}
