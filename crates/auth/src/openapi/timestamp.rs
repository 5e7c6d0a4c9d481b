//! The one date format both schemes send: ISO 8601 UTC, `YYYY-MM-DDTHH:MM:SSZ`.

use super::SignatureError;

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds, years 1970 to 9999) into
/// milliseconds since the Unix epoch.
///
/// Only the exact form the SDKs send is accepted: no offsets, no fractions, no
/// lower-case separators, and impossible dates (`02-30`) are errors.
///
/// ```
/// use mqgate_auth::openapi::parse_iso8601_utc;
/// assert_eq!(parse_iso8601_utc("1970-01-01T00:00:00Z").unwrap(), 0);
/// assert_eq!(parse_iso8601_utc("2026-11-25T19:12:02Z").unwrap(), 1_795_633_922_000);
/// assert!(parse_iso8601_utc("2026-02-29T00:00:00Z").is_err());
/// ```
pub fn parse_iso8601_utc(text: &str) -> Result<u64, SignatureError> {
    let bad = || SignatureError::BadTimestamp(text.chars().take(40).collect());
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 20
        && bytes.iter().enumerate().all(|(at, byte)| match at {
            4 | 7 => *byte == b'-',
            10 => *byte == b'T',
            13 | 16 => *byte == b':',
            19 => *byte == b'Z',
            _ => byte.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(bad());
    }
    let field = |from: usize, to: usize| text.get(from..to).and_then(|s| s.parse::<u64>().ok());
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        field(0, 4),
        field(5, 7),
        field(8, 10),
        field(11, 13),
        field(14, 16),
        field(17, 19),
    ) else {
        return Err(bad());
    };
    if year < 1970
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let days = days_since_epoch(year, month, day);
    Ok((((days * 24 + hour) * 60 + minute) * 60 + second) * 1000)
}

fn is_leap(year: u64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given valid date (year >= 1970), by Howard
/// Hinnant's `days_from_civil`, shifted so that years start in March and the
/// leap day falls last.
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year % 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        let table = [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-02T00:00:01Z", 86_401_000),
            ("2000-02-29T12:00:00Z", 951_825_600_000),
            ("2024-12-31T23:59:59Z", 1_735_689_599_000),
            ("2026-11-25T19:12:02Z", 1_795_633_922_000),
        ];
        for (text, millis) in table {
            assert_eq!(parse_iso8601_utc(text), Ok(millis), "{text}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "",
            "2026-11-25T19:12:02",
            "2026-11-25 19:12:02Z",
            "2026-11-25T19:12:02+00:00",
            "2026-11-25T19:12:02.5Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T23:60:00Z",
            "2026-11-25T23:59:60Z",
            "1969-12-31T23:59:59Z",
            "+026-11-25T19:12:02Z",
            "２026-11-25T19:12:02",
        ] {
            assert!(parse_iso8601_utc(text).is_err(), "{text}");
        }
    }

    #[test]
    fn every_day_is_one_day_after_the_previous() {
        let mut previous = None;
        for year in [1970, 1999, 2000, 2023, 2024, 2100] {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    let text = format!("{year:04}-{month:02}-{day:02}T00:00:00Z");
                    let now = parse_iso8601_utc(&text).unwrap();
                    if let Some((prev_year, prev)) = previous {
                        if prev_year == year {
                            assert_eq!(now - prev, 86_400_000, "{text}");
                        }
                    }
                    previous = Some((year, now));
                }
            }
        }
    }
}
