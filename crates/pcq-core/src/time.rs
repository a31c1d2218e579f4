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
    fn round_trips_through_micros() {
        let t = Timestamp::parse_rfc3339("2021-05-06T19:59:56.6832021+00:00").unwrap();
        assert_eq!(Timestamp::from_micros(t.as_micros()), t);
        assert_eq!(t.as_micros() % 1_000_000, 683_202);
    }
}
