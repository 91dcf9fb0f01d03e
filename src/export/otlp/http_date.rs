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
    let at = parse_http_date(value, now)?;
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
/// each of hour, minute and second, one or two for the day), so nothing a server sends can
/// overflow the arithmetic below. RFC 850's two-digit year is read relative to `now` (see
/// [`rfc850_year`]).
pub(crate) fn parse_http_date(s: &str, now: SystemTime) -> Option<SystemTime> {
    let (day, month, year, time) = if let Some((_, rest)) = s.split_once(", ") {
        let parts: Vec<&str> = rest.split([' ', '-']).collect();
        match parts.as_slice() {
            // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
            [d, m, y, t, "GMT"] if y.len() == 4 => (*d, *m, digits(y, 4..=4)?, *t),
            // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
            [d, m, y, t, "GMT"] if y.len() == 2 => {
                (*d, *m, rfc850_year(digits(y, 2..=2)?, now), *t)
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
    // Checked: RFC 850's year follows the clock, however far off that is.
    let secs = days
        .checked_mul(86_400)?
        .checked_add(h * 3600 + mi * 60 + se)?;
    let secs = u64::try_from(secs).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// The year of an RFC 850 date's two digits `yy`. RFC 9110 §5.6.7: "Recipients of a
/// timestamp value in rfc850-date format, which uses a two-digit year, MUST interpret a
/// timestamp that appears to be more than 50 years in the future as representing the most
/// recent year in the past that had the same last two digits": the latest year ending in
/// `yy` that is at most 50 years after `now`'s (a fixed pivot would drift with the clock).
fn rfc850_year(yy: i64, now: SystemTime) -> i64 {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let limit = year_of_days(secs / 86_400) + 50;
    limit - (limit - yy).rem_euclid(100)
}

/// The proleptic Gregorian year of day `z` since 1970-01-01 (`z` ≥ 0; Howard Hinnant's
/// `civil_from_days`).
fn year_of_days(z: i64) -> i64 {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // The era's year starts in March: January and February belong to the next one.
    yoe + era * 400 + i64::from(mp >= 10)
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
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(SystemTime::UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT", now),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_835_438_400))
        );
    }

    /// RFC 9110 §5.6.7: "Recipients of a timestamp value in rfc850-date format, which uses a
    /// two-digit year, MUST interpret a timestamp that appears to be more than 50 years in the
    /// future as representing the most recent year in the past that had the same last two
    /// digits": relative to now, not a fixed pivot. With a pivot at 70, in 2026 `-75` read as
    /// 1975 (a Retry-After in the past: retry at once) where it is 2075, and in 2071 `-71`
    /// read as 1971.
    #[test]
    fn rfc850_two_digit_years_are_read_relative_to_now() {
        let epoch = SystemTime::UNIX_EPOCH;
        let at = |date: &str| epoch + parse_retry_after(date, epoch).unwrap();
        let now = at("Sun, 06 Dec 2026 12:00:00 GMT");
        let wait = |date: &str| parse_retry_after(date, now).unwrap();
        let until = |imf: &str| at(imf).duration_since(now).unwrap();
        assert_eq!(
            wait("Sunday, 06-Dec-26 12:00:05 GMT"),
            Duration::from_secs(5)
        );
        // 49 and 50 years ahead: in the future, as written.
        assert_eq!(
            wait("Wednesday, 06-Dec-75 00:00:00 GMT"),
            until("Fri, 06 Dec 2075 00:00:00 GMT")
        );
        assert_eq!(
            wait("Sunday, 06-Dec-76 00:00:00 GMT"),
            until("Sun, 06 Dec 2076 00:00:00 GMT")
        );
        // 51 years ahead would be more than 50: 1977, in the past.
        assert_eq!(wait("Monday, 06-Dec-77 00:00:00 GMT"), Duration::ZERO);
        // Later, the same digits name a later year.
        let now = at("Wed, 01 Jan 2071 00:00:00 GMT");
        assert_eq!(
            parse_retry_after("Wednesday, 01-Jan-71 00:00:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        // A clock however far off: no overflow, no panic.
        for secs in [u64::MAX, i64::MAX as u64, 1 << 40] {
            if let Some(far) = epoch.checked_add(Duration::from_secs(secs)) {
                let _ = parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", far);
            }
        }
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
            assert_eq!(parse_http_date(bad, now), None, "{bad}");
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
        // The good forms still parse, a one-digit asctime day included.
        assert!(parse_http_date("Sun Nov  6 08:49:37 1994", now).is_some());
        assert!(parse_http_date("Sun Nov 16 08:49:37 1994", now).is_some());
        assert!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now).is_some());
        assert!(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT", now).is_some());
    }
}
