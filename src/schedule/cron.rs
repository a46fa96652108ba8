//! Cron expressions with the semantics of Vixie cron and Kubernetes CronJobs, whatever the
//! scheduler crate does: five fields (minute first) or six (seconds first), day-of-month and
//! day-of-week combined with OR when both are restricted, evaluated in a time zone.

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    cron: Cron,
    zone: Tz,
}

impl CronSchedule {
    /// Parses `expression` in the IANA `time_zone` (UTC when absent). The error says what to fix.
    pub fn parse(expression: &str, time_zone: Option<&str>) -> Result<CronSchedule, String> {
        let fields = expression.split_whitespace().count();
        if !expression.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err(format!(
                "`{expression}` has {fields} fields; use five (minute hour day-of-month month day-of-week, e.g. `*/15 * * * *`) or six with seconds first (`*/10 * * * * *`)"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            // Vixie cron and Kubernetes: both day fields restricted means either may match.
            .dom_and_dow(false)
            .build()
            .parse(expression)
            .map_err(|e| format!("`{expression}` is not a cron expression: {e}"))?;
        let zone = match time_zone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                format!(
                    "`{name}` is not an IANA time zone; use a name like `Europe/Amsterdam` or `UTC`"
                )
            })?,
        };
        Ok(CronSchedule {
            expression: expression.to_string(),
            cron,
            zone,
        })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first fire time strictly after `after`; `None` when the expression never matches.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Fire times are whole seconds; croner would carry the fraction of `after` along.
        let whole = after.with_nanosecond(0).unwrap_or(after);
        let local = whole.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The next `n` fire times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut times = Vec::with_capacity(n);
        let mut at = after;
        while times.len() < n {
            let Some(next) = self.next_after(at) else {
                break;
            };
            times.push(next);
            at = next;
        }
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap()
    }

    #[test]
    fn five_fields_are_minute_first_and_repeat() {
        let c = CronSchedule::parse("*/15 * * * *", None).unwrap();
        let times = c.upcoming(at(2026, 1, 1, 10, 7, 30), 3);
        assert_eq!(
            times,
            vec![
                at(2026, 1, 1, 10, 15, 0),
                at(2026, 1, 1, 10, 30, 0),
                at(2026, 1, 1, 10, 45, 0)
            ]
        );
    }

    #[test]
    fn fire_times_are_whole_seconds_after_a_fractional_now() {
        let c = CronSchedule::parse("* * * * * *", None).unwrap();
        let now = at(2026, 1, 1, 0, 0, 3) + chrono::Duration::milliseconds(440);
        assert_eq!(c.next_after(now), Some(at(2026, 1, 1, 0, 0, 4)));
        assert_eq!(
            c.next_after(at(2026, 1, 1, 0, 0, 4)),
            Some(at(2026, 1, 1, 0, 0, 5))
        );
    }

    #[test]
    fn six_fields_are_seconds_first() {
        let c = CronSchedule::parse("*/10 * * * * *", None).unwrap();
        assert_eq!(
            c.next_after(at(2026, 1, 1, 0, 0, 3)),
            Some(at(2026, 1, 1, 0, 0, 10))
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_as_vixie_cron() {
        // The 13th, or any Friday: 2026-02-06 is a Friday before the 13th.
        let c = CronSchedule::parse("0 0 13 * 5", None).unwrap();
        let times = c.upcoming(at(2026, 2, 1, 0, 0, 0), 3);
        assert_eq!(
            times,
            vec![
                at(2026, 2, 6, 0, 0, 0),
                at(2026, 2, 13, 0, 0, 0),
                at(2026, 2, 20, 0, 0, 0)
            ]
        );
    }

    #[test]
    fn time_zones_shift_fire_times() {
        let c = CronSchedule::parse("0 2 * * *", Some("Europe/Amsterdam")).unwrap();
        // 02:00 in Amsterdam in winter is 01:00 UTC.
        assert_eq!(
            c.next_after(at(2026, 1, 10, 0, 0, 0)),
            Some(at(2026, 1, 10, 1, 0, 0))
        );
    }

    #[test]
    fn mistakes_say_what_to_write() {
        let e = CronSchedule::parse("* * *", None).unwrap_err();
        assert!(e.contains("3 fields") && e.contains("five"), "{e}");
        let e = CronSchedule::parse("61 * * * *", None).unwrap_err();
        assert!(e.contains("not a cron expression"), "{e}");
        let e = CronSchedule::parse("* * * * *", Some("Mars/Base")).unwrap_err();
        assert!(e.contains("IANA"), "{e}");
    }
}
