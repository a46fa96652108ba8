//! Grouping and accumulating in columns: group keys through arrow's row format, one typed
//! accumulator per computed column. Previous totals (cumulative mode) merge in through the
//! same accumulators, so a total never depends on how records were split over runs.

use crate::config::aggregate::{Aggregate, CastType, Op};
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, Decimal128Array, Float64Array, Int64Array, UInt32Array,
    new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options, concat, take_record_batch};
use arrow::datatypes::{DataType, Decimal128Type, Field, Float64Type, Int64Type, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use std::collections::HashMap;
use std::sync::Arc;

/// Sort key of a record for first/last: timestamp, partition, offset, as comparable bytes.
pub type OrderKey = [u8; 20];

pub fn order_key(timestamp: Option<i64>, partition: i32, offset: i64) -> OrderKey {
    let mut key = [0u8; 20];
    let ts = timestamp.unwrap_or(i64::MIN);
    key[..8].copy_from_slice(&((ts as u64) ^ (1 << 63)).to_be_bytes());
    key[8..12].copy_from_slice(&((partition as u32) ^ (1 << 31)).to_be_bytes());
    key[12..].copy_from_slice(&((offset as u64) ^ (1 << 63)).to_be_bytes());
    key
}

/// Hidden state columns of cumulative totals, next to the visible ones.
const HIDDEN: &str = "__runner_";

#[derive(Debug, thiserror::Error)]
pub enum AccumulateError {
    #[error("column `{column}`: {message}")]
    Column { column: String, message: String },
    #[error("column `{column}`: {source}")]
    Arrow { column: String, source: ArrowError },
}

fn column_error(column: &str, message: impl Into<String>) -> AccumulateError {
    AccumulateError::Column {
        column: column.to_string(),
        message: message.into(),
    }
}

fn arrow_error(column: &str) -> impl FnOnce(ArrowError) -> AccumulateError + '_ {
    move |source| AccumulateError::Arrow {
        column: column.to_string(),
        source,
    }
}

/// Totals per group, built batch by batch.
pub struct Aggregator {
    group_by: Vec<String>,
    casts: Vec<(String, CastType)>,
    /// Set by the first batch: the types of the group columns.
    keys: Option<RowConverter>,
    key_types: Vec<DataType>,
    groups: HashMap<Box<[u8]>, usize>,
    group_rows: Vec<Box<[u8]>>,
    columns: Vec<(Aggregate, Acc)>,
    /// Fields referenced that some batch had; one never seen is a configuration mistake.
    seen: std::collections::BTreeSet<String>,
}

impl Aggregator {
    pub fn new(
        group_by: &[String],
        aggregates: &[Aggregate],
        casts: &[(String, CastType)],
    ) -> Self {
        Aggregator {
            group_by: group_by.to_vec(),
            casts: casts.to_vec(),
            keys: None,
            key_types: Vec::new(),
            groups: HashMap::new(),
            group_rows: Vec::new(),
            columns: aggregates
                .iter()
                .map(|a| (a.clone(), Acc::new(a.op)))
                .collect(),
            seen: Default::default(),
        }
    }

    pub fn group_count(&self) -> usize {
        self.group_rows.len()
    }

    /// Adds decoded records; `order` holds each row's first/last sort key.
    pub fn add(&mut self, batch: &RecordBatch, order: &[OrderKey]) -> Result<(), AccumulateError> {
        let groups = self.group_indices(batch)?;
        for (agg, acc) in &mut self.columns {
            let values = match &agg.field {
                None => None,
                Some(field) => match input(batch, field, &self.casts)? {
                    Some(column) => {
                        self.seen.insert(field.clone());
                        Some(column)
                    }
                    // Records of a schema without the field add nothing to it.
                    None => continue,
                },
            };
            acc.add(agg, &groups, values.as_ref(), order)?;
        }
        Ok(())
    }

    /// Merges totals written by `finish(true)` of an earlier run.
    pub fn merge(&mut self, state: &RecordBatch) -> Result<(), AccumulateError> {
        let groups = self.group_indices(state)?;
        for (agg, acc) in &mut self.columns {
            acc.merge(agg, &groups, state)?;
            if let Some(field) = &agg.field {
                self.seen.insert(field.clone());
            }
        }
        Ok(())
    }

    /// Fields that were named but never found in any batch.
    pub fn missing_fields(&self) -> Vec<String> {
        let mut missing: Vec<String> = self
            .columns
            .iter()
            .filter_map(|(a, _)| a.field.clone())
            .filter(|f| !self.seen.contains(f))
            .collect();
        missing.dedup();
        missing
    }

    /// One row per group: the group columns, then each computed column; with `state`, also the
    /// hidden columns a later run needs to merge exactly (sums and counts of averages, the
    /// order keys of first and last).
    pub fn finish(&self, state: bool) -> Result<RecordBatch, AccumulateError> {
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        let n = self.group_rows.len();
        match &self.keys {
            Some(converter) => {
                let parser = converter.parser();
                let rows = self.group_rows.iter().map(|r| parser.parse(r));
                let keys = converter
                    .convert_rows(rows)
                    .map_err(arrow_error("group_by"))?;
                for ((name, ty), array) in self.group_by.iter().zip(&self.key_types).zip(keys) {
                    fields.push(Field::new(name, ty.clone(), true));
                    arrays.push(array);
                }
            }
            None => {
                for name in &self.group_by {
                    fields.push(Field::new(name, DataType::Null, true));
                    arrays.push(new_null_array(&DataType::Null, 0));
                }
            }
        }
        for (agg, acc) in &self.columns {
            for (name, array) in acc.finish(agg, n, state)? {
                fields.push(Field::new(name, array.data_type().clone(), true));
                arrays.push(array);
            }
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(arrow_error("result"))?;
        // Groups in key order (the row format sorts as the values do), so outputs read well
        // and repeat from run to run.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by(|a, b| self.group_rows[*a as usize].cmp(&self.group_rows[*b as usize]));
        take_record_batch(&batch, &UInt32Array::from(order)).map_err(arrow_error("result"))
    }

    fn group_indices(&mut self, batch: &RecordBatch) -> Result<Vec<usize>, AccumulateError> {
        let mut columns = Vec::with_capacity(self.group_by.len());
        for name in &self.group_by {
            let column = input(batch, name, &self.casts)?
                .unwrap_or_else(|| new_null_array(&DataType::Null, batch.num_rows()));
            columns.push(column);
        }
        if self.keys.is_none() && columns.iter().all(|c| c.data_type() != &DataType::Null) {
            self.key_types = columns.iter().map(|c| c.data_type().clone()).collect();
            let sort = self
                .key_types
                .iter()
                .map(|t| SortField::new(t.clone()))
                .collect();
            self.keys = Some(RowConverter::new(sort).map_err(arrow_error("group_by"))?);
        }
        let Some(converter) = &self.keys else {
            // No batch has carried all group columns yet; they are all null so far.
            if batch.num_rows() > 0 {
                let missing = self
                    .group_by
                    .iter()
                    .find(|g| batch.column_by_name(g).is_none());
                return Err(column_error(
                    missing.map_or("group_by", |m| m.as_str()),
                    "is not in the records; group_by names decoded fields or kafka_key, kafka_partition, ...",
                ));
            }
            return Ok(Vec::new());
        };
        for (i, (column, ty)) in columns.iter_mut().zip(&self.key_types).enumerate() {
            if column.data_type() != ty {
                *column = cast_with_options(column, ty, &strict())
                    .map_err(arrow_error(&self.group_by[i]))?;
            }
        }
        let rows = converter
            .convert_columns(&columns)
            .map_err(arrow_error("group_by"))?;
        let mut indices = Vec::with_capacity(batch.num_rows());
        for row in rows.iter() {
            let bytes = row.as_ref();
            let index = match self.groups.get(bytes) {
                Some(i) => *i,
                None => {
                    let i = self.group_rows.len();
                    self.group_rows.push(bytes.into());
                    self.groups.insert(bytes.into(), i);
                    i
                }
            };
            indices.push(index);
        }
        Ok(indices)
    }
}

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..CastOptions::default()
    }
}

/// A column of the batch with its configured cast applied; `None` when the batch lacks it.
fn input(
    batch: &RecordBatch,
    name: &str,
    casts: &[(String, CastType)],
) -> Result<Option<ArrayRef>, AccumulateError> {
    let Some(column) = batch.column_by_name(name) else {
        return Ok(None);
    };
    let Some((_, to)) = casts.iter().find(|(f, _)| f == name) else {
        return Ok(Some(column.clone()));
    };
    let to = match to {
        CastType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
        CastType::Int64 => DataType::Int64,
        CastType::Float64 => DataType::Float64,
        CastType::String => DataType::Utf8,
    };
    cast_with_options(column, &to, &strict())
        .map(Some)
        .map_err(arrow_error(name))
}

/// How numbers are summed: exactly for integers and decimals.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Decimal(i8),
    Float,
}

fn numeric_kind(column: &str, ty: &DataType) -> Result<Option<Kind>, AccumulateError> {
    Ok(match ty {
        DataType::Null => None,
        t if t.is_integer() => Some(Kind::Int),
        DataType::Decimal32(_, s) | DataType::Decimal64(_, s) | DataType::Decimal128(_, s) => {
            Some(Kind::Decimal(*s))
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Some(Kind::Float),
        other => {
            return Err(column_error(
                column,
                format!(
                    "is {other}, which cannot be summed; add \"cast\": {{\"{column}\": \"decimal(18,2)\"}} if it holds numbers as text"
                ),
            ));
        }
    })
}

/// Exact sums of one kind, per group.
#[derive(Debug, Default)]
struct Sums {
    kind: Option<Kind>,
    ints: Vec<Option<i128>>,
    floats: Vec<Option<f64>>,
}

impl Sums {
    fn add(
        &mut self,
        column: &str,
        groups: &[usize],
        values: &ArrayRef,
    ) -> Result<(), AccumulateError> {
        let Some(found) = numeric_kind(column, values.data_type())? else {
            return Ok(());
        };
        let kind = *self.kind.get_or_insert(found);
        // Only widening that keeps every digit: integers into decimals, anything into floats.
        let fits = match (kind, found) {
            (a, b) if a == b => true,
            (Kind::Decimal(s), Kind::Decimal(t)) => t <= s,
            (Kind::Decimal(_), Kind::Int) | (Kind::Float, _) => true,
            _ => false,
        };
        if !fits {
            return Err(column_error(
                column,
                format!(
                    "is {} here but was summed as {kind:?} before; add \"cast\": {{\"{column}\": \"decimal(38,4)\"}} (or float64) so every record has one type",
                    values.data_type()
                ),
            ));
        }
        let n = groups.iter().max().map_or(0, |m| m + 1);
        if let Kind::Float = kind {
            let values = cast_with_options(values, &DataType::Float64, &strict())
                .map_err(arrow_error(column))?;
            grow(&mut self.floats, n);
            for (g, v) in groups
                .iter()
                .zip(values.as_primitive::<Float64Type>().iter())
            {
                if let Some(v) = v {
                    self.floats[*g] = Some(self.floats[*g].unwrap_or(0.0) + v);
                }
            }
            return Ok(());
        }
        let scale = match kind {
            Kind::Decimal(s) => s,
            _ => 0,
        };
        let values = cast_with_options(values, &DataType::Decimal128(38, scale), &strict())
            .map_err(arrow_error(column))?;
        grow(&mut self.ints, n);
        for (g, v) in groups
            .iter()
            .zip(values.as_primitive::<Decimal128Type>().iter())
        {
            if let Some(v) = v {
                let sum = self.ints[*g].unwrap_or(0).checked_add(v);
                self.ints[*g] =
                    Some(sum.ok_or_else(|| column_error(column, "the sum overflows 38 digits"))?);
            }
        }
        Ok(())
    }

    /// Sums as Int64, Decimal128(38, s) or Float64, `n` groups.
    fn finish(&self, column: &str, n: usize) -> Result<ArrayRef, AccumulateError> {
        let get = |v: &Vec<Option<i128>>, i: usize| v.get(i).copied().flatten();
        Ok(match self.kind {
            None => new_null_array(&DataType::Int64, n),
            Some(Kind::Int) => {
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    out.push(match get(&self.ints, i) {
                        None => None,
                        Some(v) => Some(i64::try_from(v).map_err(|_| {
                            column_error(column, "the sum exceeds int64; add \"cast\": {\"<field>\": \"decimal(38,0)\"}")
                        })?),
                    });
                }
                Arc::new(Int64Array::from(out))
            }
            Some(Kind::Decimal(s)) => Arc::new(
                (0..n)
                    .map(|i| get(&self.ints, i))
                    .collect::<Decimal128Array>()
                    .with_precision_and_scale(38, s)
                    .map_err(arrow_error(column))?,
            ),
            Some(Kind::Float) => Arc::new(
                (0..n)
                    .map(|i| self.floats.get(i).copied().flatten())
                    .collect::<Float64Array>(),
            ),
        })
    }
}

/// A non-null value (a column of type Null, all-null JSON, has none).
fn present(values: &ArrayRef, i: usize) -> bool {
    values.data_type() != &DataType::Null && values.is_valid(i)
}

/// First/last: keeps per group the value whose order key comes first (or last).
fn pick(
    best: &mut Vec<Option<(OrderKey, ArrayRef)>>,
    last: bool,
    groups: &[usize],
    order: &[OrderKey],
    present: impl Fn(usize) -> bool,
    values: &ArrayRef,
) {
    grow(best, groups.iter().max().map_or(0, |m| m + 1));
    for (i, g) in groups.iter().enumerate() {
        if !present(i) {
            continue;
        }
        let better = match &best[*g] {
            None => true,
            Some((k, _)) => (order[i] > *k) == last && order[i] != *k,
        };
        if better {
            best[*g] = Some((order[i], values.slice(i, 1)));
        }
    }
}

/// Adds saved counts (an Int64 column) to the groups' counts.
fn add_counts(counts: &mut Vec<i64>, groups: &[usize], saved: &ArrayRef) {
    grow(counts, groups.iter().max().map_or(0, |m| m + 1));
    for (g, v) in groups.iter().zip(saved.as_primitive::<Int64Type>().iter()) {
        counts[*g] += v.unwrap_or(0);
    }
}

fn grow<T: Clone + Default>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::default());
    }
}

/// One group's chosen value: a one-row slice of its column, and what it was chosen by.
type Chosen<K> = Option<(K, ArrayRef)>;

enum Acc {
    Count(Vec<i64>),
    Sum(Sums),
    Avg {
        sums: Sums,
        counts: Vec<i64>,
    },
    /// min (false) or max (true) of any orderable type, compared in arrow's row format.
    Extreme {
        max: bool,
        converter: Option<(RowConverter, DataType)>,
        best: Vec<Chosen<Box<[u8]>>>,
    },
    /// first (false) or last (true) by timestamp, partition and offset.
    Pick {
        last: bool,
        best: Vec<Chosen<OrderKey>>,
    },
}

impl Acc {
    fn new(op: Op) -> Acc {
        match op {
            Op::Count => Acc::Count(Vec::new()),
            Op::Sum => Acc::Sum(Sums::default()),
            Op::Avg => Acc::Avg {
                sums: Sums::default(),
                counts: Vec::new(),
            },
            Op::Min | Op::Max => Acc::Extreme {
                max: op == Op::Max,
                converter: None,
                best: Vec::new(),
            },
            Op::First | Op::Last => Acc::Pick {
                last: op == Op::Last,
                best: Vec::new(),
            },
        }
    }

    fn add(
        &mut self,
        agg: &Aggregate,
        groups: &[usize],
        values: Option<&ArrayRef>,
        order: &[OrderKey],
    ) -> Result<(), AccumulateError> {
        let column = agg.field.as_deref().unwrap_or("*");
        let n = groups.iter().max().map_or(0, |m| m + 1);
        match self {
            Acc::Count(counts) => {
                grow(counts, n);
                for (i, g) in groups.iter().enumerate() {
                    if values.is_none_or(|v| present(v, i)) {
                        counts[*g] += 1;
                    }
                }
            }
            Acc::Sum(sums) => {
                if let Some(v) = values {
                    sums.add(column, groups, v)?;
                }
            }
            Acc::Avg { sums, counts } => {
                if let Some(v) = values {
                    sums.add(column, groups, v)?;
                    grow(counts, n);
                    for (i, g) in groups.iter().enumerate() {
                        if present(v, i) {
                            counts[*g] += 1;
                        }
                    }
                }
            }
            Acc::Extreme {
                max,
                converter,
                best,
            } => {
                if let Some(v) = values {
                    extreme(column, *max, converter, best, groups, v)?;
                }
            }
            Acc::Pick { last, best } => {
                if let Some(v) = values {
                    pick(best, *last, groups, order, |i| present(v, i), v);
                }
            }
        }
        Ok(())
    }

    fn merge(
        &mut self,
        agg: &Aggregate,
        groups: &[usize],
        state: &RecordBatch,
    ) -> Result<(), AccumulateError> {
        let name = &agg.name;
        let column = |n: &str| {
            state.column_by_name(n).cloned().ok_or_else(|| {
                column_error(
                    n,
                    "is missing from the saved totals; delete the state to start over",
                )
            })
        };
        match self {
            Acc::Count(counts) => {
                let values = column(name)?;
                let values = cast_with_options(&values, &DataType::Int64, &strict())
                    .map_err(arrow_error(name))?;
                add_counts(counts, groups, &values);
            }
            Acc::Sum(sums) => sums.add(name, groups, &column(name)?)?,
            Acc::Avg { sums, counts } => {
                sums.add(name, groups, &column(&format!("{HIDDEN}sum_{name}"))?)?;
                add_counts(counts, groups, &column(&format!("{HIDDEN}count_{name}"))?);
            }
            Acc::Extreme {
                max,
                converter,
                best,
            } => {
                extreme(name, *max, converter, best, groups, &column(name)?)?;
            }
            Acc::Pick { last, best } => {
                let values = column(name)?;
                let keys = column(&format!("{HIDDEN}order_{name}"))?;
                let keys = keys.as_binary::<i32>();
                let order: Vec<OrderKey> = keys
                    .iter()
                    .map(|k| k.and_then(|k| k.try_into().ok()).unwrap_or([0; 20]))
                    .collect();
                pick(best, *last, groups, &order, |i| keys.is_valid(i), &values);
            }
        }
        Ok(())
    }

    fn finish(
        &self,
        agg: &Aggregate,
        n: usize,
        state: bool,
    ) -> Result<Vec<(String, ArrayRef)>, AccumulateError> {
        let name = agg.name.clone();
        Ok(match self {
            Acc::Count(counts) => {
                let values: Int64Array = (0..n)
                    .map(|i| Some(counts.get(i).copied().unwrap_or(0)))
                    .collect();
                vec![(name, Arc::new(values))]
            }
            Acc::Sum(sums) => vec![(name, sums.finish(&agg.name, n)?)],
            Acc::Avg { sums, counts } => {
                let mut out = vec![(name.clone(), average(sums, counts, n, &agg.name)?)];
                if state {
                    let c: Int64Array = (0..n)
                        .map(|i| Some(counts.get(i).copied().unwrap_or(0)))
                        .collect();
                    out.push((format!("{HIDDEN}sum_{name}"), sums.finish(&agg.name, n)?));
                    out.push((format!("{HIDDEN}count_{name}"), Arc::new(c)));
                }
                out
            }
            Acc::Extreme { best, .. } => vec![(
                name,
                chosen(
                    best.iter().map(|b| b.as_ref().map(|(_, v)| v)),
                    n,
                    &agg.name,
                )?,
            )],
            Acc::Pick { best, .. } => {
                let mut out = vec![(
                    name.clone(),
                    chosen(
                        best.iter().map(|b| b.as_ref().map(|(_, v)| v)),
                        n,
                        &agg.name,
                    )?,
                )];
                if state {
                    let keys: BinaryArray = (0..n)
                        .map(|i| {
                            best.get(i)
                                .and_then(|b| b.as_ref())
                                .map(|(k, _)| k.as_slice())
                        })
                        .collect();
                    out.push((format!("{HIDDEN}order_{name}"), Arc::new(keys)));
                }
                out
            }
        })
    }
}

/// Updates the min or max per group; nulls never win.
fn extreme(
    column: &str,
    max: bool,
    converter: &mut Option<(RowConverter, DataType)>,
    best: &mut Vec<Chosen<Box<[u8]>>>,
    groups: &[usize],
    values: &ArrayRef,
) -> Result<(), AccumulateError> {
    if values.data_type() == &DataType::Null {
        return Ok(());
    }
    let (converter, ty) = match converter {
        Some(c) => c,
        None => {
            let ty = values.data_type().clone();
            let c =
                RowConverter::new(vec![SortField::new(ty.clone())]).map_err(arrow_error(column))?;
            converter.insert((c, ty))
        }
    };
    let values = if values.data_type() != ty {
        cast_with_options(values, ty, &strict()).map_err(arrow_error(column))?
    } else {
        values.clone()
    };
    let rows = converter
        .convert_columns(std::slice::from_ref(&values))
        .map_err(arrow_error(column))?;
    let parser = converter.parser();
    grow(best, groups.iter().max().map_or(0, |m| m + 1));
    for (i, g) in groups.iter().enumerate() {
        if !values.is_valid(i) {
            continue;
        }
        let row = rows.row(i);
        let better = match &best[*g] {
            None => true,
            Some((b, _)) => {
                let current = parser.parse(b);
                if max { row > current } else { row < current }
            }
        };
        if better {
            best[*g] = Some((row.as_ref().into(), values.slice(i, 1)));
        }
    }
    Ok(())
}

/// Concatenates one-row slices, nulls for groups without a value.
fn chosen<'a>(
    values: impl Iterator<Item = Option<&'a ArrayRef>>,
    n: usize,
    column: &str,
) -> Result<ArrayRef, AccumulateError> {
    let values: Vec<Option<&ArrayRef>> = values.chain(std::iter::repeat(None)).take(n).collect();
    let ty = values
        .iter()
        .flatten()
        .next()
        .map_or(DataType::Null, |v| v.data_type().clone());
    if n == 0 {
        return Ok(new_null_array(&ty, 0));
    }
    let null = new_null_array(&ty, 1);
    let parts: Vec<&dyn Array> = values
        .iter()
        .map(|v| v.map_or(null.as_ref(), |v| v.as_ref()))
        .collect();
    concat(&parts).map_err(arrow_error(column))
}

/// Averages: Float64 for integers and floats, Decimal128(38, s+4) for decimals (exact, half up).
fn average(
    sums: &Sums,
    counts: &[i64],
    n: usize,
    column: &str,
) -> Result<ArrayRef, AccumulateError> {
    let count = |i: usize| counts.get(i).copied().unwrap_or(0);
    Ok(match sums.kind {
        None => new_null_array(&DataType::Float64, n),
        Some(Kind::Decimal(s)) => {
            let scale = (s + 4).min(38);
            let factor = 10i128.pow((scale - s) as u32);
            let values: Decimal128Array = (0..n)
                .map(|i| {
                    let sum = sums.ints.get(i).copied().flatten()?;
                    let c = count(i) as i128;
                    if c == 0 {
                        return None;
                    }
                    let scaled = sum.checked_mul(factor)?;
                    let (q, r) = (scaled / c, scaled % c);
                    Some(if 2 * r.abs() >= c {
                        q + scaled.signum()
                    } else {
                        q
                    })
                })
                .collect();
            Arc::new(
                values
                    .with_precision_and_scale(38, scale)
                    .map_err(arrow_error(column))?,
            )
        }
        Some(Kind::Int) => Arc::new(
            (0..n)
                .map(|i| {
                    let c = count(i);
                    (c > 0)
                        .then(|| {
                            sums.ints
                                .get(i)
                                .copied()
                                .flatten()
                                .map(|s| s as f64 / c as f64)
                        })
                        .flatten()
                })
                .collect::<Float64Array>(),
        ),
        Some(Kind::Float) => Arc::new(
            (0..n)
                .map(|i| {
                    let c = count(i);
                    (c > 0)
                        .then(|| sums.floats.get(i).copied().flatten().map(|s| s / c as f64))
                        .flatten()
                })
                .collect::<Float64Array>(),
        ),
    })
}

#[cfg(test)]
mod tests;
