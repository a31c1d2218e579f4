//! Timestamps as stored (microseconds since the Unix epoch) and every form pcq writes them in:
//! RFC 3339 with milliseconds for the API's own dates, .NET's round-trip form for webhook
//! events and delivery results, and the Azure Table eTag of validation codes. Each form is one
//! `time` format description here; nothing else in pcq formats a date.

use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

/// RFC 3339 in UTC with milliseconds and `Z`: `2020-12-04T20:54:24.000Z`.
const RFC3339_MILLIS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// .NET's round-trip (`"o"`) form of a UTC `DateTimeOffset`: `2017-11-16T16:19:06.3520270+00:00`.
const DOTNET_ROUND_TRIP: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7][offset_hour sign:mandatory]:[offset_minute]"
);

/// .NET's round-trip form of a `DateTime` without a kind: `2017-11-16T16:19:06.3520270`.
const DOTNET_ROUND_TRIP_WITHOUT_OFFSET: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]");

/// An Azure Table weak eTag, its colons URL-encoded: `W/"datetime'2018-10-10T18%3A49%3A58.727348Z'"`.
const TABLE_ETAG: &[BorrowedFormatItem<'static>] = format_description!(
    "W/\"datetime'[year]-[month]-[day]T[hour]%3A[minute]%3A[second].[subsecond digits:6]Z'\""
);

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

    /// This time written with `format`, in UTC.
    fn format(self, format: &[BorrowedFormatItem<'_>]) -> String {
        self.to_datetime()
            .format(format)
            .expect("a UTC date-time has every component of pcq's date formats")
    }

    /// RFC 3339 in UTC with millisecond precision (truncated) and a `Z` suffix, e.g.
    /// `2020-12-04T20:54:24.000Z`: the dates of pcq's API.
    pub fn to_rfc3339(self) -> String {
        self.format(RFC3339_MILLIS)
    }

    /// .NET's round-trip form in UTC, seven fractional digits and `+00:00`, e.g.
    /// `2017-11-16T16:19:06.3520270+00:00`: the `ResourceChangeUtcDate` of webhook events.
    pub fn to_dotnet_round_trip(self) -> String {
        self.format(DOTNET_ROUND_TRIP)
    }

    /// [`to_dotnet_round_trip`](Self::to_dotnet_round_trip) without the offset, e.g.
    /// `2017-11-16T16:19:06.3520270`: the `dateTimeUtc` of webhook delivery results.
    pub fn to_dotnet_round_trip_without_offset(self) -> String {
        self.format(DOTNET_ROUND_TRIP_WITHOUT_OFFSET)
    }

    /// The Azure-Table-style weak eTag of a change at this time, as Partner Center sends for
    /// validation codes: `W/"datetime'2018-10-10T18%3A49%3A58.727348Z'"`.
    pub fn to_table_etag(self) -> String {
        self.format(TABLE_ETAG)
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

    fn at(raw: &str) -> Timestamp {
        Timestamp::parse_rfc3339(raw).unwrap()
    }

    #[test]
    fn formats_utc_with_z_and_milliseconds() {
        let cases = [
            (
                at("2020-12-04T21:54:24.123456+01:00"),
                "2020-12-04T20:54:24.123Z",
            ),
            (Timestamp::from_micros(0), "1970-01-01T00:00:00.000Z"),
            (
                at("2021-05-06T19:59:56.9999999Z"),
                "2021-05-06T19:59:56.999Z",
            ),
            (at("2021-05-06T19:59:56.001Z"), "2021-05-06T19:59:56.001Z"),
            (at("0001-01-01T00:00:00Z"), "0001-01-01T00:00:00.000Z"),
            (
                at("9999-12-31T23:59:59.999999Z"),
                "9999-12-31T23:59:59.999Z",
            ),
            (Timestamp::from_micros(-1), "1969-12-31T23:59:59.999Z"),
        ];
        for (t, want) in cases {
            assert_eq!(t.to_rfc3339(), want, "{t:?}");
        }
    }

    #[test]
    fn formats_dotnet_round_trip_with_seven_digits() {
        let cases = [
            ("2017-11-16T16:19:06.352027Z", "2017-11-16T16:19:06.3520270"),
            (
                "2017-11-16T17:19:06.352027+01:00",
                "2017-11-16T16:19:06.3520270",
            ),
            ("2020-01-02T03:04:05Z", "2020-01-02T03:04:05.0000000"),
            ("2020-01-02T03:04:05.000001Z", "2020-01-02T03:04:05.0000010"),
            ("2020-01-02T03:04:05.1Z", "2020-01-02T03:04:05.1000000"),
            (
                "2021-05-06T19:59:56.6832021Z",
                "2021-05-06T19:59:56.6832020",
            ),
            ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.0000000"),
            ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.9999990"),
        ];
        for (raw, want) in cases {
            assert_eq!(at(raw).to_dotnet_round_trip_without_offset(), want, "{raw}");
            assert_eq!(
                at(raw).to_dotnet_round_trip(),
                format!("{want}+00:00"),
                "{raw}"
            );
        }
    }

    #[test]
    fn formats_table_etags_with_microseconds() {
        let cases = [
            (
                "2018-10-10T18:49:58.727348Z",
                "W/\"datetime'2018-10-10T18%3A49%3A58.727348Z'\"",
            ),
            (
                "2018-10-10T18:49:58Z",
                "W/\"datetime'2018-10-10T18%3A49%3A58.000000Z'\"",
            ),
            (
                "2018-01-02T03:04:05.000007-02:00",
                "W/\"datetime'2018-01-02T05%3A04%3A05.000007Z'\"",
            ),
            (
                "1970-01-01T00:00:00.5Z",
                "W/\"datetime'1970-01-01T00%3A00%3A00.500000Z'\"",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(at(raw).to_table_etag(), want, "{raw}");
        }
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
