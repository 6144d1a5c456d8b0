//! Calendar dates without a time-zone database: the UTC timestamps of
//! libvirt's log lines, for every crate that writes or shows them.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-26 01:28:57.123+0000` for `time`, in UTC.
pub fn libvirt(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (year, month, day) = civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
/// Works in 400-year eras of 146 097 days, with years starting on 1 March so
/// the leap day falls at the end.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // month is in 1..=12 and day in 1..=31 by construction.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn civil_dates_across_leap_rules() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        let at = |secs: u64, millis: u64| {
            libvirt(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01 00:00:00.000+0000");
        assert_eq!(at(951_782_400, 5), "2000-02-29 00:00:00.005+0000");
        assert_eq!(at(1_700_000_000, 123), "2023-11-14 22:13:20.123+0000");
        assert_eq!(at(1_795_656_537, 999), "2026-11-26 01:28:57.999+0000");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28 23:59:59.000+0000");
        assert_eq!(
            libvirt(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01 00:00:00.000+0000"
        );
    }
}
