//! `path_template` strings: parse, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(template) = runner::config::PathTemplate::parse(text) {
            let _ = template.per_record();
        }
    }
});
