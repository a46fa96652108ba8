//! Cron expressions and time zones (`expression\nzone`): parse, and the next fire times of
//! what parses, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (expression, zone) = match text.split_once('\n') {
        Some((e, z)) => (e, Some(z)),
        None => (text, None),
    };
    if let Ok(schedule) = runner::schedule::cron::CronSchedule::parse(expression, zone) {
        let now = chrono::DateTime::from_timestamp(1_796_119_200, 0).unwrap_or_default();
        let _ = schedule.upcoming(now, 3);
    }
});
