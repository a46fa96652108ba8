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
    )
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
    let first = d.decode(&raw(&[Some(r#"{"a": 1}"#), None])).unwrap();
    assert_eq!(payload_fields(&first), ["a:Int64"]);
    assert_eq!(first.num_rows(), 2);
    let same = d.decode(&raw(&[Some(r#"{"a": 2}"#)])).unwrap();
    assert_eq!(same.schema(), first.schema());
    let wider = d.decode(&raw(&[Some(r#"{"a": 3, "b": "x"}"#)])).unwrap();
    assert_eq!(payload_fields(&wider), ["a:Int64", "b:Utf8"]);
}

#[test]
fn a_conflicting_type_starts_a_new_schema_instead_of_dropping_values() {
    let mut d = json_decoder();
    d.decode(&raw(&[Some(r#"{"a": 1}"#)])).unwrap();
    let changed = d
        .decode(&raw(&[Some(r#"{"a": {"nested": true}}"#)]))
        .unwrap();
    assert_eq!(payload_fields(&changed), ["a:Struct(\"nested\": Boolean)"]);
}

#[test]
fn a_bad_record_is_named_by_offset() {
    let mut d = json_decoder();
    let e = d
        .decode(&raw(&[Some(r#"{"a": 1}"#), Some("[1, 2]")]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "topic t partition 0 offset 11: is JSON but not an object; use \"format\": \"raw\" for such topics"
    );
}
