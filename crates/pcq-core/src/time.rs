//! Timestamps as stored (microseconds since the Unix epoch) and as sent (RFC 3339, UTC, `Z`).

use time::{OffsetDateTime, UtcOffset};

/// A point in time with microsecond precision, stored as microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// From a `time` date-time (any offset).
    pub fn from_datetime(dt: OffsetDateTime) -> Self {
        let nanos = dt.unix_timestamp_nanos();
        Timestamp((nanos / 1_000) as i64)
    }

    /// As a UTC `time` date-time.
    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// RFC 3339 in UTC with millisecond precision and a `Z` suffix, e.g.
    /// `2020-12-04T20:54:24.000Z`.
    pub fn to_rfc3339(self) -> String {
        let dt = self.to_datetime().to_offset(UtcOffset::UTC);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        )
    }

    /// Parses RFC 3339 with any offset.
    pub fn parse_rfc3339(raw: &str) -> Option<Self> {
        OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339)
            .ok()
            .map(Self::from_datetime)
    }

    /// Parses a date as Partner Center's audit queries take it: `2020-09-02`, RFC 3339, or the
    /// .NET en-US form `6/1/2017` / `6/1/2017 12:00:00 AM`. A date alone means the start of
    /// that day (UTC); with `end_of_day`, the start of the next day.
    pub fn parse_query_date(raw: &str, end_of_day: bool) -> Option<Self> {
        use time::{Date, Month, PrimitiveDateTime, Time};
        let raw = raw.trim();
        if let Some(t) = Self::parse_rfc3339(raw) {
            return Some(t);
        }
        let day = |date: Date| {
            let start = PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc();
            let t = Self::from_datetime(start);
            if end_of_day {
                t.plus_micros(86_400_000_000)
            } else {
                t
            }
        };
        // yyyy-mm-dd
        if let [y, m, d] = raw.split('-').collect::<Vec<_>>()[..] {
            let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
            return Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?)
                .ok()
                .map(day);
        }
        // M/D/YYYY[ h:mm:ss AM|PM]
        let mut parts = raw.split_whitespace();
        let date_part = parts.next()?;
        let [m, d, y] = date_part.split('/').collect::<Vec<_>>()[..] else {
            return None;
        };
        let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
        let date = Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
        let Some(clock) = parts.next() else {
            return Some(day(date));
        };
        let meridiem = parts.next();
        if parts.next().is_some() {
            return None;
        }
        let fields: Vec<u8> = clock
            .split(':')
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let (mut hour, minute, second) = match fields[..] {
            [h, m] => (h, m, 0),
            [h, m, s] => (h, m, s),
            _ => return None,
        };
        match meridiem.map(str::to_ascii_uppercase).as_deref() {
            None => {}
            Some("AM") if (1..=12).contains(&hour) => hour %= 12,
            Some("PM") if (1..=12).contains(&hour) => hour = hour % 12 + 12,
            Some(_) => return None,
        }
        let time = Time::from_hms(hour, minute, second).ok()?;
        Some(Self::from_datetime(
            PrimitiveDateTime::new(date, time).assume_utc(),
        ))
    }

    /// This time plus `micros` microseconds (saturating).
    #[must_use]
    pub fn plus_micros(self, micros: i64) -> Self {
        Timestamp(self.0.saturating_add(micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_z_and_milliseconds() {
        let t = Timestamp::parse_rfc3339("2020-12-04T21:54:24.123456+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2020-12-04T20:54:24.123Z");
        assert_eq!(
            Timestamp::from_micros(0).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn query_dates_in_every_documented_form() {
        let day = Timestamp::parse_rfc3339("2020-09-02T00:00:00Z").unwrap();
        assert_eq!(Timestamp::parse_query_date("2020-09-02", false), Some(day));
        assert_eq!(
            Timestamp::parse_query_date("2020-09-02", true),
            Some(day.plus_micros(86_400_000_000))
        );
        assert_eq!(Timestamp::parse_query_date("9/2/2020", false), Some(day));
        assert_eq!(
            Timestamp::parse_query_date("9/2/2020 12:00:00 AM", false),
            Some(day)
        );
        assert_eq!(
            Timestamp::parse_query_date("9/2/2020 1:30:00 PM", false),
            Timestamp::parse_rfc3339("2020-09-02T13:30:00Z")
        );
        assert_eq!(
            Timestamp::parse_query_date("2020-09-02T10:00:00+02:00", true),
            Timestamp::parse_rfc3339("2020-09-02T08:00:00Z")
        );
        for bad in [
            "",
            "yesterday",
            "2020-13-01",
            "2/30/2020",
            "9/2/2020 13:00:00 PM",
            "9/2/2020 1:00 XM",
            "1/1/2020 1:2:3:4",
        ] {
            assert_eq!(Timestamp::parse_query_date(bad, false), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_through_micros() {
        let t = Timestamp::parse_rfc3339("2021-05-06T19:59:56.6832021+00:00").unwrap();
        assert_eq!(Timestamp::from_micros(t.as_micros()), t);
        assert_eq!(t.as_micros() % 1_000_000, 683_202);
    }
}
