//! How often one client may ask for costly work (a POST builds a WebRTC session): a token bucket
//! per client address, kept as the time its bucket is full again (GCRA). Sans-IO: the time is an
//! argument.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// POSTs one client address may send at once after a quiet while (whipcastsrc
/// `max-posts-per-address`): a studio behind one NAT starting a few OBS, a publisher retrying...
pub const DEFAULT_POSTS_PER_ADDRESS: u32 = 10;
/// ...and then one per this interval (OBS retries a failed connection every few seconds).
pub const POST_INTERVAL: Duration = Duration::from_millis(500);
/// Client addresses followed at most; only those that have been busy lately are kept, so this
/// is reached only when that many sent POSTs within their burst's time.
pub const MAX_CLIENTS: usize = 4096;

/// Who a limit applies to: an IPv4 address, or an IPv6 /64 (one host's usual share: an address
/// per request would cost an attacker nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// The IPv4 address (an IPv4-mapped IPv6 address counts as IPv4).
    V4(u32),
    /// The /64 prefix.
    V6(u64),
}

impl From<IpAddr> for Client {
    fn from(address: IpAddr) -> Client {
        match address.to_canonical() {
            IpAddr::V4(v4) => Client::V4(v4.into()),
            IpAddr::V6(v6) => Client::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

/// Per-client token buckets: each client may send a burst of requests, then one per interval.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    max_clients: usize,
    /// Each busy client's bucket: when it is full again.
    full_at: HashMap<Client, Duration>,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit::new(POST_INTERVAL, MAX_CLIENTS)
    }
}

impl RateLimit {
    /// A limiter that refills a bucket by one request per `interval` and follows at most
    /// `max_clients` busy clients (past that, new clients are refused until some bucket is full).
    pub fn new(interval: Duration, max_clients: usize) -> RateLimit {
        RateLimit { interval, max_clients, full_at: HashMap::new() }
    }

    /// A request from `client` at `now` (time since any fixed start), who may send `burst` at
    /// once: `Ok`, or how long until it would be let through.
    pub fn check(&mut self, client: impl Into<Client>, burst: u32, now: Duration) -> Result<(), Duration> {
        let client = client.into();
        if !self.full_at.contains_key(&client) && self.full_at.len() >= self.max_clients {
            self.full_at.retain(|_, full_at| *full_at > now);
            if self.full_at.len() >= self.max_clients {
                return Err(self.interval);
            }
        }
        let window = self.interval * burst.max(1);
        let full_at = self.full_at.get(&client).copied().unwrap_or(now).max(now) + self.interval;
        if full_at > now + window {
            return Err(full_at - now - window);
        }
        self.full_at.insert(client, full_at);
        Ok(())
    }

    /// Clients followed now.
    pub fn clients(&self) -> usize {
        self.full_at.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_burst_then_one_per_interval() {
        let mut limit = RateLimit::new(MS(500), 100);
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(limit.check(a, 3, MS(0)), Ok(()));
        }
        assert_eq!(limit.check(a, 3, MS(0)), Err(MS(500)));
        assert_eq!(limit.check(a, 3, MS(400)), Err(MS(100)));
        assert_eq!(limit.check(a, 3, MS(500)), Ok(()));
        assert_eq!(limit.check(a, 3, MS(600)), Err(MS(400)), "refused requests cost nothing");
        assert_eq!(limit.check(a, 3, MS(1000)), Ok(()));
        // After a quiet while the whole burst is back.
        for _ in 0..3 {
            assert_eq!(limit.check(a, 3, MS(10_000)), Ok(()));
        }
        assert!(limit.check(a, 3, MS(10_000)).is_err());
    }

    #[test]
    fn a_larger_burst_lets_more_through_from_the_same_bucket() {
        // Streams on one server may allow different bursts; the client's bucket is one.
        let mut limit = RateLimit::new(MS(500), 100);
        let a = ip("192.0.2.1");
        assert_eq!(limit.check(a, 1, MS(0)), Ok(()));
        assert!(limit.check(a, 1, MS(0)).is_err());
        assert_eq!(limit.check(a, 2, MS(0)), Ok(()));
        assert_eq!(limit.check(a, 2, MS(0)), Err(MS(500)));
    }

    #[test]
    fn each_client_has_its_own_bucket() {
        let mut limit = RateLimit::new(MS(500), 100);
        assert_eq!(limit.check(ip("192.0.2.1"), 1, MS(0)), Ok(()));
        assert!(limit.check(ip("192.0.2.1"), 1, MS(0)).is_err());
        assert_eq!(limit.check(ip("192.0.2.2"), 1, MS(0)), Ok(()));
        assert_eq!(limit.check(ip("2001:db8::1"), 1, MS(0)), Ok(()));
        assert_eq!(limit.check(ip("2001:db8:0:1::1"), 1, MS(0)), Ok(()), "another /64");
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_share_a_bucket_and_mapped_ipv4_is_ipv4() {
        let mut limit = RateLimit::new(MS(500), 100);
        assert_eq!(limit.check(ip("2001:db8::1"), 2, MS(0)), Ok(()));
        assert_eq!(limit.check(ip("2001:db8::ffff:1234"), 2, MS(0)), Ok(()));
        assert!(limit.check(ip("2001:db8::9"), 2, MS(0)).is_err());
        assert_eq!(limit.check(ip("198.51.100.7"), 2, MS(0)), Ok(()));
        assert_eq!(limit.check(ip("::ffff:198.51.100.7"), 2, MS(0)), Ok(()));
        assert!(limit.check(ip("198.51.100.7"), 2, MS(0)).is_err());
        assert_ne!(Client::from(ip("0.0.0.1")), Client::from(ip("::1")), "IPv4 is not the IPv6 space");
    }

    #[test]
    fn memory_is_bounded_and_quiet_clients_are_forgotten() {
        let mut limit = RateLimit::new(MS(500), 3);
        for i in 1..=3 {
            assert_eq!(limit.check(ip(&format!("192.0.2.{i}")), 2, MS(0)), Ok(()));
        }
        // Full of clients busy within their window: a new one waits.
        assert_eq!(limit.check(ip("192.0.2.4"), 2, MS(100)), Err(MS(500)));
        assert_eq!(limit.clients(), 3);
        // Their buckets are full again: forgotten, room for the new one.
        assert_eq!(limit.check(ip("192.0.2.4"), 2, MS(600)), Ok(()));
        assert_eq!(limit.clients(), 1);
    }
}
