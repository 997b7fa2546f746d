//! The two timestamp forms the lab puts on the wire.
//!
//! Hand-written rather than pulling in `time`'s formatting feature or the
//! `httpdate` crate: both forms are fixed-width and the lab needs nothing
//! else from a formatter.

use std::time::SystemTime;

use time::OffsetDateTime;

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// RFC 9110 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`: the only
/// date form a server may generate for `Date` and `Retry-After`.
pub(crate) fn imf_fixdate(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[usize::from(t.weekday().number_days_from_monday())],
        t.day(),
        MONTHS[usize::from(u8::from(t.month()) - 1)],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// RFC 3339 in UTC with whole seconds, as Kubernetes writes `metav1.Time`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc9110_example_date() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(imf_fixdate(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(rfc3339(t), "1994-11-06T08:49:37Z");
    }

    #[test]
    fn leap_day() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(imf_fixdate(t), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
