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
        types: None,
        headers: None,
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
fn a_fraction_in_an_integer_column_widens_it_instead_of_truncating() {
    use arrow::array::AsArray;
    let mut d = json_decoder();
    rows(&mut d, &raw(&[Some(r#"{"a": 1}"#)]));
    let changed = rows(&mut d, &raw(&[Some(r#"{"a": 1.5}"#), Some(r#"{"a": 2}"#)]));
    assert_eq!(payload_fields(&changed), ["a:Float64"]);
    let a = changed.column_by_name("a").unwrap();
    let a = a.as_primitive::<arrow::datatypes::Float64Type>();
    assert_eq!(a.values().to_vec(), [1.5, 2.0]);
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

fn typed_decoder() -> Decoder {
    let topic = serde_json::json!({
        "topic": "shop",
        "type_header": "item_type_name",
        "types": {
            "com.shop.Delivered": {"format": "json"},
            "com.shop.Returned": {"format": "json"}
        }
    });
    Decoder::new(&serde_json::from_value(topic).unwrap(), None)
}

fn typed(values: &[(Option<&str>, &str)]) -> RawBatch {
    let mut batch = raw(&values.iter().map(|(_, v)| Some(*v)).collect::<Vec<_>>());
    batch.types = Some(values.iter().map(|(t, _)| t.map(String::from)).collect());
    batch
}

#[test]
fn a_header_typed_topic_decodes_each_type_into_its_own_column() {
    let mut d = typed_decoder();
    let batch = typed(&[
        (
            Some("com.shop.Delivered"),
            r#"{"order": 1, "courier": "dhl"}"#,
        ),
        (
            Some("com.shop.Returned"),
            r#"{"order": 2, "reason": "broken"}"#,
        ),
        (
            Some("com.shop.Delivered"),
            r#"{"order": 3, "courier": "ups"}"#,
        ),
    ]);
    let rows = rows(&mut d, &batch);
    assert_eq!(
        payload_fields(&rows),
        [
            "value_type:Utf8",
            "com.shop.Delivered:Struct(\"courier\": Utf8, \"order\": Int64)",
            "com.shop.Returned:Struct(\"order\": Int64, \"reason\": Utf8)"
        ]
    );
    let delivered = rows.column_by_name("com.shop.Delivered").unwrap();
    let returned = rows.column_by_name("com.shop.Returned").unwrap();
    assert_eq!(
        (0..3).map(|i| delivered.is_valid(i)).collect::<Vec<_>>(),
        [true, false, true]
    );
    assert_eq!(
        (0..3).map(|i| returned.is_valid(i)).collect::<Vec<_>>(),
        [false, true, false]
    );
    // A later batch of one type keeps the other's column, so files keep their schema.
    let only = rows_of(
        &mut d,
        &typed(&[(
            Some("com.shop.Returned"),
            r#"{"order": 4, "reason": "late"}"#,
        )]),
    );
    assert_eq!(only.schema(), rows.schema());
}

fn rows_of(d: &mut Decoder, batch: &RawBatch) -> RecordBatch {
    rows(d, batch)
}

#[test]
fn an_unknown_or_missing_type_is_a_dead_letter_with_the_reason() {
    let mut d = typed_decoder();
    let batch = typed(&[
        (Some("com.shop.Delivered"), r#"{"order": 1}"#),
        (Some("com.shop.Lost"), r#"{"order": 2}"#),
        (None, r#"{"order": 3}"#),
    ]);
    let decoded = d.decode(&batch).unwrap();
    assert_eq!(decoded.offsets, [10]);
    assert_eq!(decoded.dead_offsets, [11, 12]);
    let dead = decoded.dead.unwrap();
    let reasons = dead
        .column_by_name("error")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    assert!(
        reasons
            .value(0)
            .contains("type `com.shop.Lost`, which is not in the topic's types"),
        "{}",
        reasons.value(0)
    );
    assert!(
        reasons
            .value(1)
            .contains("header item_type_name is missing"),
        "{}",
        reasons.value(1)
    );
}

/// Found by the `decode` fuzz target: one record that arrow-avro took for a valid
/// record of this schema made the decoder panic slicing the metadata columns.
#[test]
fn fuzz_avro_record_that_panicked_while_slicing_the_metadata_columns() {
    // The fuzz target's schema.
    const AVRO: &str = include_str!("../../fuzz/schemas/p.avsc");
    let dir = tempfile::tempdir().unwrap();
    let avsc = dir.path().join("p.avsc");
    std::fs::write(&avsc, AVRO).unwrap();
    let topic: TopicConfig = serde_json::from_value(
        serde_json::json!({"topic": "a", "format": "avro", "schema_file": avsc}),
    )
    .unwrap();
    let record: &[u8] = &[
        2, 28, 97, 98, 99, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 6, 97, 127, 0, 129,
        0, 0, 0, 0, 0, 0, 3, 0,
    ];
    let batch = RawBatch {
        partition: 0,
        offsets: vec![0],
        timestamps: vec![Some(0)],
        keys: arrow::array::BinaryArray::from_iter([Some(record)]),
        values: arrow::array::BinaryArray::from_iter([Some(record)]),
        next_offset: 1,
        last: true,
        types: None,
        headers: None,
    };
    let decoded = Decoder::new(&topic, None).decode(&batch).unwrap();
    assert_eq!(
        decoded.offsets.len() + decoded.dead_offsets.len(),
        1,
        "{decoded:?}"
    );
}

/// JSON records `{"n": i, "s": "…"}`, with `bad` at the given indexes.
fn numbered_json(count: usize, bad: &[usize]) -> Vec<String> {
    (0..count)
        .map(|i| match bad.contains(&i) {
            true => "{broken".to_string(),
            false => format!(r#"{{"n": {i}, "s": "row {i}", "f": {}.5}}"#, i % 7),
        })
        .collect()
}

#[test]
fn a_large_batch_decoded_in_chunks_equals_one_decoding_of_all_its_records() {
    let values = numbered_json(9_000, &[]);
    let batch = raw(&values.iter().map(|v| Some(v.as_str())).collect::<Vec<_>>());
    let mut d = json_decoder();
    let decoded = d.decode(&batch).unwrap();
    assert!(decoded.rows.len() > 1, "decoded in chunks");
    let all = arrow::compute::concat_batches(&decoded.rows[0].schema(), &decoded.rows).unwrap();
    assert_eq!(all.num_rows(), 9_000);
    let payload = Arc::new(Schema::new(
        all.schema().fields()[METADATA_COLUMNS.len()..].to_vec(),
    ));
    let text = values.join("\n");
    let one = arrow::json::ReaderBuilder::new(payload.clone())
        .with_batch_size(10_000)
        .build(text.as_bytes())
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(&all.columns()[METADATA_COLUMNS.len()..], one.columns());
    let offsets = all.column_by_name("kafka_offset").unwrap();
    let expected: Arc<dyn Array> = Arc::new(arrow::array::Int64Array::from_iter_values(10..9_010));
    assert_eq!(offsets, &expected);
}

/// Chunks decoded on the calling thread (two cores or fewer) and on every core give the same
/// pieces in the same order, and the same first bad record, counted from the batch's start.
#[test]
fn chunks_on_one_thread_and_on_every_core_give_the_same_pieces_and_error() {
    let decode = |bad: &'static [usize]| {
        move |rows: std::ops::Range<usize>| match bad.iter().find(|b| rows.contains(b)) {
            Some(b) => Err(PayloadError::Record {
                index: b - rows.start,
                reason: format!("record {b}"),
            }),
            None => Ok(rows),
        }
    };
    for parallel in [false, true] {
        let pieces = in_chunks_on(5_000, parallel, decode(&[])).unwrap();
        assert_eq!(pieces.len(), 10);
        assert_eq!(
            pieces.into_iter().flatten().collect::<Vec<_>>(),
            (0..5_000).collect::<Vec<_>>()
        );
        match in_chunks_on(5_000, parallel, decode(&[4_100, 1_700, 2_000])) {
            Err(PayloadError::Record { index, reason }) => {
                assert_eq!((index, reason.as_str()), (1_700, "record 1700"));
            }
            other => panic!("parallel {parallel}: {other:?}"),
        }
        assert_eq!(
            in_chunks_on(900, parallel, decode(&[])).unwrap(),
            vec![0..900]
        );
    }
}

#[test]
fn chunked_decoding_names_the_first_bad_record_of_the_batch() {
    let values = numbered_json(9_000, &[7_000, 3_000]);
    let batch = raw(&values.iter().map(|v| Some(v.as_str())).collect::<Vec<_>>());
    let mut d = fail_fast_json_decoder();
    // The schema is known, so the batch is decoded in chunks.
    rows(&mut d, &raw(&[Some(values[0].as_str())]));
    let e = d.decode(&batch).unwrap_err().to_string();
    assert!(e.starts_with("topic t partition 0 offset 3010: "), "{e}");
    let mut d = json_decoder();
    rows(&mut d, &raw(&[Some(values[0].as_str())]));
    let decoded = d.decode(&batch).unwrap();
    assert_eq!(decoded.dead_offsets, [3_010, 7_010]);
    let rows: usize = decoded.rows.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 8_998);
}

#[test]
fn protobuf_keeps_record_order_around_a_bad_record_in_a_large_batch() {
    use prost_reflect::{DynamicMessage, Value};
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("p.proto");
    std::fs::write(
        &proto,
        "syntax = \"proto3\"; message P { int64 id = 1; string name = 2; }",
    )
    .unwrap();
    let topic = serde_json::json!({"topic": "t", "format": "protobuf",
        "schema_file": proto, "message": "P"});
    let mut d = Decoder::new(&serde_json::from_value(topic).unwrap(), None);
    let descriptor = super::protobuf::load_message(&proto, "P").unwrap();
    let values: Vec<Vec<u8>> = (0..9_000i64)
        .map(|i| {
            if i == 5_000 {
                return vec![0xff, 0xff, 0xff];
            }
            let mut m = DynamicMessage::new(descriptor.clone());
            m.set_field_by_name("id", Value::I64(i));
            m.set_field_by_name("name", Value::String(format!("n{i}")));
            prost::Message::encode_to_vec(&m)
        })
        .collect();
    let mut vals = BinaryBuilder::new();
    for v in &values {
        vals.append_value(v);
    }
    let mut batch = raw(&vec![None; values.len()]);
    batch.values = vals.finish();
    let decoded = d.decode(&batch).unwrap();
    assert_eq!(decoded.dead_offsets, [5_010]);
    let all = arrow::compute::concat_batches(&decoded.rows[0].schema(), &decoded.rows).unwrap();
    let ids = all
        .column_by_name("id")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    let expected: Vec<i64> = (0..9_000).filter(|i| *i != 5_000).collect();
    assert_eq!(ids.values().to_vec(), expected);
}
