//! The `aggregate` block of a job file: what to group by, what to compute, where totals go.

use serde::Deserialize;
use std::collections::BTreeMap;

/// ```json
/// "aggregate": {
///   "group_by": ["account_number"],
///   "compute": ["sum(amount) as total", "count(*) as transactions", "max(amount)"],
///   "cast": { "amount": "decimal(18,2)" },
///   "mode": "cumulative",
///   "outputs": { "log": true, "topic": "account_totals", "parquet": "totals" }
/// }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// Columns of the decoded records (or `kafka_key`, `kafka_partition`, ...) to group by.
    pub group_by: Vec<String>,
    /// `op(field) [as name]` with op one of sum, count, min, max, avg, first, last.
    pub compute: Vec<String>,
    /// Columns converted before aggregating: `decimal(p,s)` (exact sums), `int64`, `float64`,
    /// `string`.
    #[serde(default)]
    pub cast: BTreeMap<String, String>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub outputs: Outputs,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Totals of the records each run reads.
    #[default]
    PerRun,
    /// Totals of every record since the first run, kept in the state beside the progress.
    Cumulative,
}

impl Mode {
    /// As written in job files.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::PerRun => "per_run",
            Mode::Cumulative => "cumulative",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outputs {
    /// One log line per group.
    #[serde(default = "yes")]
    pub log: bool,
    /// A Kafka topic: one record per group, keyed by the group (for a compacted topic).
    #[serde(default)]
    pub topic: Option<String>,
    /// A folder in the sink: one Parquet file per run, `<folder>/<topic>/run=<n>.parquet`.
    #[serde(default)]
    pub parquet: Option<String>,
}

impl Default for Outputs {
    fn default() -> Self {
        Outputs {
            log: true,
            topic: None,
            parquet: None,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Sum,
    Count,
    Min,
    Max,
    Avg,
    First,
    Last,
}

/// One computed column: `op(field) as name`; `field` is `None` for `count(*)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub name: String,
    pub op: Op,
    pub field: Option<String>,
}

/// A column type named in `cast`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastType {
    Decimal { precision: u8, scale: i8 },
    Int64,
    Float64,
    String,
}

impl AggregateConfig {
    /// The parsed `compute` list; errors name the entry and what to write.
    pub fn aggregates(&self) -> Result<Vec<Aggregate>, (String, String)> {
        let mut out: Vec<Aggregate> = Vec::new();
        for (i, text) in self.compute.iter().enumerate() {
            let a = parse_aggregate(text).map_err(|m| (format!("aggregate.compute[{i}]"), m))?;
            if self.group_by.contains(&a.name) || out.iter().any(|b| b.name == a.name) {
                return Err((
                    format!("aggregate.compute[{i}]"),
                    format!(
                        "the column name `{}` is used twice; add `as <other name>`",
                        a.name
                    ),
                ));
            }
            out.push(a);
        }
        if out.is_empty() {
            return Err((
                "aggregate.compute".into(),
                "is empty; list what to compute, e.g. [\"sum(amount) as total\", \"count(*)\"]"
                    .into(),
            ));
        }
        Ok(out)
    }

    pub fn casts(&self) -> Result<Vec<(String, CastType)>, (String, String)> {
        self.cast
            .iter()
            .map(|(field, ty)| {
                parse_cast(ty)
                    .map(|t| (field.clone(), t))
                    .map_err(|m| (format!("aggregate.cast.{field}"), m))
            })
            .collect()
    }
}

fn parse_aggregate(text: &str) -> Result<Aggregate, String> {
    let hint = "write `op(field)` or `op(field) as name`, with op one of sum, count, min, max, avg, first, last (and `count(*)`)";
    let (call, alias) = match text.split_once(" as ") {
        Some((call, alias)) => (call.trim(), Some(alias.trim())),
        None => (text.trim(), None),
    };
    let (op_name, rest) = call
        .split_once('(')
        .ok_or_else(|| format!("`{text}`: {hint}"))?;
    let field = rest
        .strip_suffix(')')
        .map(str::trim)
        .ok_or_else(|| format!("`{text}`: {hint}"))?;
    let op = match op_name.trim().to_ascii_lowercase().as_str() {
        "sum" => Op::Sum,
        "count" => Op::Count,
        "min" => Op::Min,
        "max" => Op::Max,
        "avg" | "average" | "mean" => Op::Avg,
        "first" => Op::First,
        "last" => Op::Last,
        other => return Err(format!("`{text}`: unknown operation `{other}`; {hint}")),
    };
    let field = match field {
        "*" if op == Op::Count => None,
        "" | "*" => return Err(format!("`{text}`: name a field; {hint}")),
        f => Some(f.to_string()),
    };
    let name = match alias {
        Some("") => return Err(format!("`{text}`: `as` needs a name")),
        Some(a) => a.to_string(),
        None => match &field {
            Some(f) => format!("{}_{f}", op_name.trim().to_ascii_lowercase()),
            None => "count".to_string(),
        },
    };
    Ok(Aggregate { name, op, field })
}

fn parse_cast(text: &str) -> Result<CastType, String> {
    let t = text.trim().to_ascii_lowercase();
    match t.as_str() {
        "int64" | "bigint" | "long" => return Ok(CastType::Int64),
        "float64" | "double" => return Ok(CastType::Float64),
        "string" | "utf8" => return Ok(CastType::String),
        _ => {}
    }
    let bad = || {
        format!(
            "`{text}` is not a type; use decimal(p,s) with p up to 38, int64, float64 or string"
        )
    };
    let args = t
        .strip_prefix("decimal(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(bad)?;
    let (p, s) = args.split_once(',').ok_or_else(bad)?;
    let precision: u8 = p.trim().parse().map_err(|_| bad())?;
    let scale: i8 = s.trim().parse().map_err(|_| bad())?;
    if precision == 0 || precision > 38 || scale < 0 || scale as u8 > precision {
        return Err(bad());
    }
    Ok(CastType::Decimal { precision, scale })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_parse_with_default_names() {
        let a = parse_aggregate("sum(amount) as total").unwrap();
        assert_eq!(
            (a.op, a.name.as_str(), a.field.as_deref()),
            (Op::Sum, "total", Some("amount"))
        );
        let a = parse_aggregate("count(*)").unwrap();
        assert_eq!((a.op, a.name.as_str(), a.field), (Op::Count, "count", None));
        let a = parse_aggregate("AVG(amount)").unwrap();
        assert_eq!((a.op, a.name.as_str()), (Op::Avg, "avg_amount"));
        assert!(
            parse_aggregate("median(x)")
                .unwrap_err()
                .contains("unknown operation")
        );
        assert!(
            parse_aggregate("sum(*)")
                .unwrap_err()
                .contains("name a field")
        );
        assert!(
            parse_aggregate("sum amount")
                .unwrap_err()
                .contains("op(field)")
        );
    }

    #[test]
    fn casts_parse() {
        assert_eq!(
            parse_cast("decimal(18, 2)").unwrap(),
            CastType::Decimal {
                precision: 18,
                scale: 2
            }
        );
        assert_eq!(parse_cast("int64").unwrap(), CastType::Int64);
        assert!(parse_cast("decimal(40,2)").is_err());
        assert!(parse_cast("money").unwrap_err().contains("decimal(p,s)"));
    }
}
