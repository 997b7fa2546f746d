//! When to try again: capped exponential backoff with full jitter, bounded
//! by one overall deadline, and `Retry-After` honoured. Pure, so the policy
//! is tested without sleeping.

use std::time::{Duration, SystemTime};

/// Capped exponential backoff with full jitter: the n-th wait is uniform in
/// `[0, min(cap, base * 2^n)]`, which spreads a fleet of agents that all
/// failed at once (the thundering-herd case a fixed interval makes worse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(8),
        }
    }
}

impl Backoff {
    /// The ceiling of the wait after the `attempt`-th failure (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait after the `attempt`-th failure; `unit` is a uniform random
    /// number in [0, 1).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        self.ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// What to do after a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Sleep this long, then try again.
    Wait(Duration),
    /// The deadline comes first: stop now rather than sleep into it.
    GiveUp,
}

/// No wait is shorter than this, whatever the jitter or the server says:
/// a `Retry-After: 0` must not turn the loop into a flood.
pub const MIN_WAIT: Duration = Duration::from_millis(50);

/// Decides the next step. The server's `Retry-After` comes first and our
/// jittered wait is added to it: it knows its load but never makes us
/// hurry, and taken alone it would send every client it turned away back
/// at the same instant (the fleet benchmark saw exactly that). No wait is
/// shorter than [`MIN_WAIT`]. A wait that would reach the deadline
/// ends the work now: one more attempt with no time left could only time
/// out, and would hide the real last error behind "timed out".
pub fn next(jittered: Duration, retry_after: Option<Duration>, remaining: Duration) -> Next {
    let wait = retry_after
        .map_or(jittered, |ra| ra.saturating_add(jittered))
        .max(MIN_WAIT);
    if wait >= remaining {
        Next::GiveUp
    } else {
        Next::Wait(wait)
    }
}

/// Longest `Retry-After` we take literally; a larger value (or a date far
/// away) is clamped, the deadline decides the rest.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// Parses `Retry-After`: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
/// A date in the past means "now". Garbage is ignored (`None`), as a client
/// should not fail because a server sent a bad hint.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(RETRY_AFTER_MAX));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(RETRY_AFTER_MAX),
    )
}

/// What one attempt came to.
pub enum Attempt<T> {
    Done(T),
    /// Worth another try. `error` is logged now and returned if the
    /// deadline ends the work; `retry_after` is the server's hint.
    Retry {
        error: crate::Error,
        retry_after: Option<Duration>,
    },
    /// Final: returned at once.
    Fail(crate::Error),
}

/// Runs `attempt` until it is done, fails finally, or the deadline passes.
/// `attempt` gets the attempt number and the time left, which bounds its own
/// request timeout. The loop is bounded by the deadline alone: every path
/// either returns or sleeps a positive time no later than the deadline.
pub fn run<T>(
    what: &str,
    deadline: std::time::Instant,
    backoff: Backoff,
    mut attempt: impl FnMut(u32, Duration) -> Attempt<T>,
) -> crate::Result<T> {
    let mut n: u32 = 0;
    loop {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        let (error, retry_after) = match attempt(n, remaining) {
            Attempt::Done(t) => return Ok(t),
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry { error, retry_after } => (error, retry_after),
        };
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        match next(backoff.delay(n, fastrand::f64()), retry_after, remaining) {
            Next::Wait(wait) => {
                tracing::warn!(
                    "{what}: {} (attempt {}); retrying in {:.1}s",
                    error.message(),
                    n + 1,
                    wait.as_secs_f64()
                );
                std::thread::sleep(wait);
            }
            Next::GiveUp => {
                let why = match retry_after {
                    Some(ra) if !ra.is_zero() && ra >= remaining => format!(
                        "the server asked to retry after {}s, past the deadline",
                        ra.as_secs()
                    ),
                    _ => "the deadline comes before the next try".to_string(),
                };
                let error = error.context(format!(
                    "{what}: gave up after {} attempt{} ({why})",
                    n + 1,
                    if n == 0 { "" } else { "s" }
                ));
                return Err(if error.hint_text().is_some() {
                    error
                } else {
                    error.hint(
                        "check the network path to the server, or allow more time with --timeout",
                    )
                });
            }
        }
        n = n.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        let c: Vec<u128> = (0..6).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(c, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(400));
        assert_eq!(b.delay(3, 7.0), Duration::from_millis(800));
    }

    #[test]
    fn retry_after_comes_first_then_the_jitter_and_the_deadline_bounds() {
        let s = Duration::from_secs;
        assert_eq!(next(s(1), None, s(10)), Next::Wait(s(1)));
        assert_eq!(next(s(1), Some(s(3)), s(10)), Next::Wait(s(4)));
        // a hint never shortens our own wait, and the jitter spreads the
        // clients it turned away
        assert_eq!(next(s(2), Some(s(1)), s(10)), Next::Wait(s(3)));
        assert_eq!(next(Duration::ZERO, Some(s(1)), s(10)), Next::Wait(s(1)));
        // Retry-After: 0 and a zero jitter still wait a little
        assert_eq!(
            next(Duration::ZERO, Some(Duration::ZERO), s(10)),
            Next::Wait(MIN_WAIT)
        );
        // a wait reaching the deadline gives up instead of sleeping into it
        assert_eq!(next(s(5), None, s(2)), Next::GiveUp);
        assert_eq!(next(s(1), Some(s(30)), s(10)), Next::GiveUp);
        assert_eq!(next(s(1), None, Duration::ZERO), Next::GiveUp);
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999", now),
            Some(RETRY_AFTER_MAX)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
