//! The console's query string (what anyone can type into the address bar): parse, and run its
//! filters (CEL included) over a record, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runner::web::browse::{Caps, Query};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = Query::parse(text, Some("t"), Caps::default()) else {
        return;
    };
    let value = serde_json::json!({"a": 1, "b": "x", "c": [1.5, null], "d": {"e": true}});
    let headers = vec![("h".to_string(), "v".to_string())];
    let candidate = runner::web::browse::message::Candidate {
        partition: 0,
        offset: 1,
        timestamp: Some(2),
        key: Some("k".into()),
        headers: &headers,
        type_name: None,
        value: Some(&value),
        raw: None,
    };
    let _ = candidate.matches("t", &query);
});
