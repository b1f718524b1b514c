//! When a CronJob's schedule fires: the next time after an instant in the
//! CronJob's time zone (robfig/cron's `SpecSchedule.Next`, minute precision),
//! and the most recent missed time with how many were missed (upstream's
//! `mostRecentScheduleTime`). Pure functions over jiff time, no I/O.

use berth_api::kinds::batch::cron::Schedule;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

/// How far ahead a schedule is searched (robfig gives up after five years).
const YEARS_AHEAD: i16 = 5;

fn bit(set: u64, value: impl Into<i64>) -> bool {
    let value = value.into();
    (0..64).contains(&value) && set & (1u64 << value) != 0
}

/// The first firing strictly after `after`, in `tz`; none within five years
/// (a schedule such as `0 0 30 2 *` never fires).
pub fn next_after(schedule: &Schedule, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    let Schedule::Fields {
        minutes,
        hours,
        days_of_month,
        months,
        days_of_week,
        day_star,
    } = *schedule
    else {
        let Schedule::Every(seconds) = *schedule else {
            unreachable!()
        };
        // robfig's ConstantDelaySchedule: whole seconds after `after`.
        let base = Timestamp::from_second(after.as_second()).ok()?;
        return base
            .checked_add(SignedDuration::from_secs(seconds as i64))
            .ok();
    };
    let start = after.to_zoned(tz.clone()).datetime();
    let limit = start.year() + YEARS_AHEAD;
    // The next whole minute after `after`.
    let mut t: DateTime = start
        .with()
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .ok()?
        .checked_add(1.minute())
        .ok()?;
    let day_matches = |t: &DateTime| {
        let dom = bit(days_of_month, t.day());
        let dow = bit(days_of_week, t.weekday().to_sunday_zero_offset());
        if day_star {
            dom && dow
        } else {
            dom || dow
        }
    };
    while t.year() <= limit {
        if !bit(months, t.month()) {
            let first = t.first_of_month().with().hour(0).minute(0).build().ok()?;
            t = first.checked_add(1.month()).ok()?;
            continue;
        }
        if !day_matches(&t) {
            t = t
                .date()
                .checked_add(1.day())
                .ok()?
                .to_datetime(jiff::civil::Time::midnight());
            continue;
        }
        if !bit(hours, t.hour()) {
            t = t
                .with()
                .minute(0)
                .build()
                .ok()?
                .checked_add(1.hour())
                .ok()?;
            continue;
        }
        if !bit(minutes, t.minute()) {
            t = t.checked_add(1.minute()).ok()?;
            continue;
        }
        let at = tz.to_ambiguous_timestamp(t).compatible().ok()?;
        if at > after {
            return Some(at);
        }
        t = t.checked_add(1.minute()).ok()?;
    }
    None
}

/// The latest firing in `(earliest, now]` and how many firings that range
/// holds (the walk is bounded; a count past 100 is where upstream warns).
pub fn most_recent(
    schedule: &Schedule,
    earliest: Timestamp,
    now: Timestamp,
    tz: &TimeZone,
) -> (Option<Timestamp>, usize) {
    let firings = std::iter::successors(next_after(schedule, earliest, tz), |t| {
        next_after(schedule, *t, tz)
    })
    .take_while(|t| *t <= now)
    .take(1_000_000);
    firings.fold((None, 0), |(_, count), t| (Some(t), count + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::kinds::batch::cron::parse;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn next_firings_follow_cron_rules_in_the_zone() {
        let utc = TimeZone::UTC;
        let berlin = jiff::tz::db().get("Europe/Berlin").unwrap();
        let cases = [
            (
                "*/1 * * * *",
                "2026-03-01T10:00:30Z",
                &utc,
                "2026-03-01T10:01:00Z",
            ),
            (
                "*/15 * * * *",
                "2026-03-01T10:15:00Z",
                &utc,
                "2026-03-01T10:30:00Z",
            ),
            (
                "@hourly",
                "2026-03-01T10:15:00Z",
                &utc,
                "2026-03-01T11:00:00Z",
            ),
            (
                "@daily",
                "2026-12-31T23:59:00Z",
                &utc,
                "2027-01-01T00:00:00Z",
            ),
            (
                "0 9 * * mon",
                "2026-03-01T10:00:00Z",
                &utc,
                "2026-03-02T09:00:00Z",
            ),
            // Either day field matches when neither is `*`.
            (
                "0 0 13 * fri",
                "2026-03-01T00:00:00Z",
                &utc,
                "2026-03-06T00:00:00Z",
            ),
            (
                "0 0 1 1 *",
                "2026-03-01T00:00:00Z",
                &utc,
                "2027-01-01T00:00:00Z",
            ),
            (
                "30 8 * * *",
                "2026-07-01T00:00:00Z",
                &berlin,
                "2026-07-01T06:30:00Z",
            ),
            (
                "@every 90s",
                "2026-03-01T10:00:00.5Z",
                &utc,
                "2026-03-01T10:01:30Z",
            ),
        ];
        for (spec, after, tz, expected) in cases {
            let schedule = parse(spec).unwrap();
            assert_eq!(
                next_after(&schedule, at(after), tz),
                Some(at(expected)),
                "{spec}"
            );
        }
        let never = parse("0 0 30 2 *").unwrap();
        assert_eq!(next_after(&never, at("2026-01-01T00:00:00Z"), &utc), None);
    }

    #[test]
    fn most_recent_counts_missed_firings() {
        let schedule = parse("*/1 * * * *").unwrap();
        let utc = TimeZone::UTC;
        let cases = [
            ("2026-03-01T10:00:30Z", "2026-03-01T10:00:50Z", None, 0),
            (
                "2026-03-01T10:00:30Z",
                "2026-03-01T10:03:10Z",
                Some("2026-03-01T10:03:00Z"),
                3,
            ),
        ];
        for (earliest, now, latest, missed) in cases {
            let got = most_recent(&schedule, at(earliest), at(now), &utc);
            assert_eq!(got, (latest.map(at), missed), "{earliest}..{now}");
        }
        let (latest, missed) = most_recent(
            &schedule,
            at("2026-03-01T00:00:00Z"),
            at("2026-03-02T00:00:30Z"),
            &utc,
        );
        assert_eq!(latest, Some(at("2026-03-02T00:00:00Z")));
        assert!(missed > 100);
    }
}
