//! HTTP dates and `Retry-After` (RFC 9110 §5.6.7, §10.2.3), as a collector's throttling
//! response gives them: parsed strictly, so nothing a server sends can overflow.

use std::time::{Duration, SystemTime};

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date (IMF-fixdate, or the
/// obsolete RFC 850 and asctime forms), as the delay from `now` (zero for a past date).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `s` as a number if it is plain ASCII digits, as many as `width` allows; `str::parse`
/// alone would take a leading `+` and any length (a year of 19 digits overflows the day
/// count).
fn digits(s: &str, width: std::ops::RangeInclusive<usize>) -> Option<i64> {
    if !width.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses the three HTTP-date forms. Every numeric field must be plain ASCII digits of its
/// form's width (four for the year of IMF-fixdate and asctime, two for RFC 850's, two for
/// each of hour, minute and second, one or two for the day), so no arithmetic below can
/// overflow whatever a server sends.
pub(crate) fn parse_http_date(s: &str) -> Option<SystemTime> {
    let (day, month, year, time) = if let Some((_, rest)) = s.split_once(", ") {
        let parts: Vec<&str> = rest.split([' ', '-']).collect();
        match parts.as_slice() {
            // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
            [d, m, y, t, "GMT"] if y.len() == 4 => (*d, *m, digits(y, 4..=4)?, *t),
            // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
            [d, m, y, t, "GMT"] if y.len() == 2 => {
                let yy = digits(y, 2..=2)?;
                // RFC 9110: a two-digit year more than 50 years in the future is in the past.
                (*d, *m, if yy < 70 { 2000 + yy } else { 1900 + yy }, *t)
            }
            _ => return None,
        }
    } else {
        // asctime: "Sun Nov  6 08:49:37 1994"
        let parts: Vec<&str> = s.split_whitespace().collect();
        match parts.as_slice() {
            [_, m, d, t, y] => (*d, *m, digits(y, 4..=4)?, *t),
            _ => return None,
        }
    };
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let day = digits(day, 1..=2).filter(|d| (1..=31).contains(d))?;
    let mut hms = time.split(':').map(|p| digits(p, 2..=2));
    let (h, mi, se) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    let secs = u64::try_from(secs).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_all_three_date_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770); // 1994-11-06 08:49:30
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(date, now),
                Some(Duration::from_secs(7)),
                "{date}"
            );
        }
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 25:00:00 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(SystemTime::UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_835_438_400))
        );
    }

    #[test]
    fn http_dates_with_bad_digit_fields_are_refused_without_overflow() {
        let now = SystemTime::UNIX_EPOCH;
        for bad in [
            // asctime: a year of 19 digits used to overflow `days_from_civil` (a panic with
            // overflow checks), any other length or a sign was taken.
            "Sun Nov  6 08:49:37 9223372036854775807",
            "Sun Nov  6 08:49:37 -9223372036854775808",
            "Sun Nov  6 08:49:37 19940",
            "Sun Nov  6 08:49:37 994",
            "Sun Nov  6 08:49:37 +1994",
            "Sun Nov +6 08:49:37 1994",
            "Sun Nov  6 +8:49:37 1994",
            "Sun Nov  6 -9223372036854775808:49:37 1994",
            // IMF-fixdate: four digits exactly.
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Sun, 06 Nov 19a4 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:+7 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            // RFC 850: two digits exactly.
            "Sunday, 06-Nov-+4 08:49:37 GMT",
            "Sunday, 06-Nov-4 08:49:37 GMT",
            "Sunday, 06-Nov-994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
        // The good forms still parse, a one-digit asctime day included.
        assert!(parse_http_date("Sun Nov  6 08:49:37 1994").is_some());
        assert!(parse_http_date("Sun Nov 16 08:49:37 1994").is_some());
        assert!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_some());
        assert!(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT").is_some());
    }
}
