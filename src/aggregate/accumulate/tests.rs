use super::*;
use crate::config::aggregate::{AggregateConfig, CastType};
use arrow::array::{Decimal128Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{Field, Schema};

fn spec(compute: &[&str]) -> Vec<Aggregate> {
    let cfg: AggregateConfig = serde_json::from_value(serde_json::json!({
        "group_by": ["account"],
        "compute": compute,
    }))
    .unwrap();
    cfg.aggregates().unwrap()
}

/// (account, amount in cents, count, score).
type Row = (&'static str, Option<i128>, Option<i64>, Option<f64>);

/// Rows of (account, amount as a decimal, count as int, score as float).
fn batch(rows: &[Row]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("account", DataType::Utf8, true),
        Field::new("amount", DataType::Decimal128(10, 2), true),
        Field::new("qty", DataType::Int64, true),
        Field::new("score", DataType::Float64, true),
    ]);
    let amount: Decimal128Array = rows.iter().map(|r| r.1).collect();
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
            Arc::new(amount.with_precision_and_scale(10, 2).unwrap()),
            Arc::new(rows.iter().map(|r| r.2).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.3).collect::<Float64Array>()),
        ],
    )
    .unwrap()
}

fn keys(n: usize, first: i64) -> Vec<OrderKey> {
    (0..n as i64)
        .map(|i| order_key(Some(1000 + first + i), 0, first + i))
        .collect()
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    b.column_by_name(name).unwrap()
}

fn display(b: &RecordBatch, name: &str) -> Vec<String> {
    let options = arrow::util::display::FormatOptions::default().with_null("null");
    let f =
        arrow::util::display::ArrayFormatter::try_new(column(b, name).as_ref(), &options).unwrap();
    (0..b.num_rows()).map(|i| f.value(i).to_string()).collect()
}

const ALL: &[&str] = &[
    "sum(amount) as total",
    "count(*)",
    "count(qty) as with_qty",
    "sum(qty)",
    "sum(score)",
    "min(amount)",
    "max(account) as max_account",
    "avg(amount)",
    "avg(qty)",
    "first(qty)",
    "last(qty)",
];

fn rows() -> Vec<Row> {
    vec![
        ("a", Some(1001), Some(1), Some(0.5)),
        ("b", Some(-250), None, Some(1.0)),
        ("a", Some(10), Some(5), None),
        ("a", None, Some(7), Some(2.0)),
        ("b", Some(3), Some(2), None),
    ]
}

#[test]
fn totals_are_typed_and_exact() {
    let mut agg = Aggregator::new(&["account".into()], &spec(ALL), &[]);
    let rows = rows();
    agg.add(&batch(&rows), &keys(rows.len(), 0)).unwrap();
    let out = agg.finish(false).unwrap();
    assert_eq!(display(&out, "account"), ["a", "b"]);
    assert_eq!(
        column(&out, "total").data_type(),
        &DataType::Decimal128(38, 2)
    );
    assert_eq!(display(&out, "total"), ["10.11", "-2.47"]);
    assert_eq!(display(&out, "count"), ["3", "2"]);
    assert_eq!(display(&out, "with_qty"), ["3", "1"]);
    assert_eq!(column(&out, "sum_qty").data_type(), &DataType::Int64);
    assert_eq!(display(&out, "sum_qty"), ["13", "2"]);
    assert_eq!(display(&out, "sum_score"), ["2.5", "1.0"]);
    assert_eq!(display(&out, "min_amount"), ["0.10", "-2.50"]);
    assert_eq!(display(&out, "max_account"), ["a", "b"]);
    // (10.01 + 0.10) / 2 = 5.055 exactly, at scale 2 + 4.
    assert_eq!(display(&out, "avg_amount"), ["5.055000", "-1.235000"]);
    assert_eq!(display(&out, "avg_qty"), ["4.333333333333333", "2.0"]);
    assert_eq!(display(&out, "first_qty"), ["1", "2"]);
    assert_eq!(display(&out, "last_qty"), ["7", "2"]);
    assert_eq!(out.num_columns(), 12, "no hidden columns without state");
}

#[test]
fn merging_saved_totals_equals_one_pass() {
    let rows = rows();
    let mut whole = Aggregator::new(&["account".into()], &spec(ALL), &[]);
    whole.add(&batch(&rows), &keys(rows.len(), 0)).unwrap();
    let expected = whole.finish(false).unwrap();
    for split in 0..=rows.len() {
        let mut first = Aggregator::new(&["account".into()], &spec(ALL), &[]);
        first.add(&batch(&rows[..split]), &keys(split, 0)).unwrap();
        let saved = first.finish(true).unwrap();
        let mut second = Aggregator::new(&["account".into()], &spec(ALL), &[]);
        second.merge(&saved).unwrap();
        second
            .add(
                &batch(&rows[split..]),
                &keys(rows.len() - split, split as i64),
            )
            .unwrap();
        let merged = crate::aggregate::state::visible(&second.finish(true).unwrap());
        for f in expected.schema().fields() {
            assert_eq!(
                display(&merged, f.name()),
                display(&expected, f.name()),
                "split {split}, {}",
                f.name()
            );
        }
    }
}

#[test]
fn casts_make_float_sums_exact_and_text_summable() {
    let schema = Schema::new(vec![
        Field::new("account", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("text", DataType::Utf8, false),
    ]);
    let n = 1000;
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(vec!["a"; n])),
            Arc::new(Float64Array::from(vec![0.1; n])),
            Arc::new(StringArray::from(vec!["12.34"; n])),
        ],
    )
    .unwrap();
    let casts = vec![
        (
            "amount".to_string(),
            CastType::Decimal {
                precision: 18,
                scale: 2,
            },
        ),
        (
            "text".to_string(),
            CastType::Decimal {
                precision: 18,
                scale: 2,
            },
        ),
    ];
    let mut agg = Aggregator::new(
        &["account".into()],
        &spec(&["sum(amount)", "sum(text)"]),
        &casts,
    );
    agg.add(&b, &keys(n, 0)).unwrap();
    let out = agg.finish(false).unwrap();
    assert_eq!(display(&out, "sum_amount"), ["100.00"]);
    assert_eq!(display(&out, "sum_text"), ["12340.00"]);
    // Without the cast, text cannot be summed and the error says how to fix it.
    let mut agg = Aggregator::new(&["account".into()], &spec(&["sum(text)"]), &[]);
    let e = agg.add(&b, &keys(n, 0)).unwrap_err().to_string();
    assert!(e.contains("text") && e.contains("decimal(18,2)"), "{e}");
}

#[test]
fn a_field_in_no_record_is_reported() {
    let rows = rows();
    let mut agg = Aggregator::new(&["account".into()], &spec(&["sum(amout)"]), &[]);
    agg.add(&batch(&rows), &keys(rows.len(), 0)).unwrap();
    assert_eq!(agg.missing_fields(), ["amout"]);
}
