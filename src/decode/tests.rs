use super::*;
use arrow::array::BinaryBuilder;

fn raw(values: &[Option<&str>]) -> RawBatch {
    let mut keys = BinaryBuilder::new();
    let mut vals = BinaryBuilder::new();
    for v in values {
        keys.append_null();
        vals.append_option(v.map(str::as_bytes));
    }
    RawBatch {
        partition: 0,
        offsets: (10..10 + values.len() as i64).collect(),
        timestamps: vec![Some(1_700_000_000_000); values.len()],
        keys: keys.finish(),
        values: vals.finish(),
        next_offset: 10 + values.len() as i64,
        last: false,
    }
}

fn json_decoder() -> Decoder {
    Decoder::new(
        &serde_json::from_value(serde_json::json!({"topic": "t", "format": "json"})).unwrap(),
        None,
    )
}

fn fail_fast_json_decoder() -> Decoder {
    Decoder::new(
        &serde_json::from_value(
            serde_json::json!({"topic": "t", "format": "json", "on_decode_error": "fail"}),
        )
        .unwrap(),
        None,
    )
}

/// The decoded rows of a batch with no bad records.
fn rows(d: &mut Decoder, batch: &RawBatch) -> RecordBatch {
    let decoded = d.decode(batch).unwrap();
    assert!(decoded.dead.is_none());
    assert_eq!(decoded.rows.len(), 1);
    decoded.rows.into_iter().next().unwrap()
}

fn payload_fields(batch: &RecordBatch) -> Vec<String> {
    batch.schema().fields()[METADATA_COLUMNS.len()..]
        .iter()
        .map(|f| format!("{}:{}", f.name(), f.data_type()))
        .collect()
}

#[test]
fn a_new_field_widens_the_schema_and_keeps_the_old_columns() {
    let mut d = json_decoder();
    let first = rows(&mut d, &raw(&[Some(r#"{"a": 1}"#), None]));
    assert_eq!(payload_fields(&first), ["a:Int64"]);
    assert_eq!(first.num_rows(), 2);
    let same = rows(&mut d, &raw(&[Some(r#"{"a": 2}"#)]));
    assert_eq!(same.schema(), first.schema());
    let wider = rows(&mut d, &raw(&[Some(r#"{"a": 3, "b": "x"}"#)]));
    assert_eq!(payload_fields(&wider), ["a:Int64", "b:Utf8"]);
}

#[test]
fn a_conflicting_type_starts_a_new_schema_instead_of_dropping_values() {
    let mut d = json_decoder();
    rows(&mut d, &raw(&[Some(r#"{"a": 1}"#)]));
    let changed = rows(&mut d, &raw(&[Some(r#"{"a": {"nested": true}}"#)]));
    assert_eq!(payload_fields(&changed), ["a:Struct(\"nested\": Boolean)"]);
}

#[test]
fn a_bad_record_is_named_by_offset_when_failing_fast() {
    let mut d = fail_fast_json_decoder();
    let e = d
        .decode(&raw(&[Some(r#"{"a": 1}"#), Some("[1, 2]")]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "topic t partition 0 offset 11: is JSON but not an object; use \"format\": \"raw\" for such topics"
    );
}

#[test]
fn bad_records_become_dead_letters_and_the_rest_decodes() {
    use arrow::array::AsArray;
    let mut d = json_decoder();
    let batch = raw(&[
        Some(r#"{"a": 1}"#),
        Some("[1, 2]"),
        Some(r#"{"a": 2}"#),
        Some("{broken"),
    ]);
    let decoded = d.decode(&batch).unwrap();
    assert_eq!(decoded.offsets, [10, 12]);
    assert_eq!(decoded.rows[0].num_rows(), 2);
    assert_eq!(decoded.dead_offsets, [11, 13]);
    let dead = decoded.dead.unwrap();
    let names: Vec<_> = dead
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names[METADATA_COLUMNS.len()..], DEAD_LETTER_COLUMNS);
    let values = dead.column_by_name("value").unwrap().as_binary::<i32>();
    assert_eq!(values.value(0), b"[1, 2]");
    assert_eq!(values.value(1), b"{broken");
    let errors = dead.column_by_name("error").unwrap().as_string::<i32>();
    assert!(
        errors.value(0).contains("not an object"),
        "{}",
        errors.value(0)
    );
    assert!(
        errors.value(1).contains("not valid JSON"),
        "{}",
        errors.value(1)
    );
}

#[test]
fn records_without_fields_still_become_rows() {
    let mut d = json_decoder();
    let batch = rows(&mut d, &raw(&[Some("{}"), None, Some("{}")]));
    assert_eq!(batch.num_rows(), 3);
    assert_eq!(batch.num_columns(), METADATA_COLUMNS.len());
}
