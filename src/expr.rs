//! Expressions in job files (filters, selected fields, join ids, output keys and routes), in
//! CEL, the Common Expression Language: side-effect free and always terminating by design
//! (no loops, no I/O), the language Kubernetes uses for admission rules, so there is nothing
//! for a job file to execute. Each expression sees one record as variables:
//! `value`, `key`, `headers`, `topic`, `partition`, `offset`, `timestamp` and `type`.

use serde_json::Value;

/// The variables an expression may use.
pub const VARIABLES: [&str; 8] = [
    "value",
    "key",
    "headers",
    "topic",
    "partition",
    "offset",
    "timestamp",
    "type",
];

#[derive(Debug, thiserror::Error)]
#[error("`{source_text}`: {reason}")]
pub struct ExprError {
    pub source_text: String,
    pub reason: String,
}

/// A compiled expression.
#[derive(Clone)]
pub struct Expr {
    source: String,
    program: std::sync::Arc<cel::Program>,
    /// A plain field path (`value.a.b`, `key`) is read straight from the record: the same
    /// answer as CEL's without turning the record into CEL values (most keys and fields).
    path: Option<Path>,
}

#[derive(Clone, Debug)]
enum Path {
    Key,
    Value(Vec<String>),
}

impl Path {
    fn parse(source: &str) -> Option<Path> {
        let source = source.trim();
        if source == "key" {
            return Some(Path::Key);
        }
        let mut parts = source.split('.');
        if parts.next() != Some("value") {
            return None;
        }
        let fields: Vec<String> = parts.map(str::to_string).collect();
        let plain = |f: &String| {
            !f.is_empty()
                && !f.starts_with(|c: char| c.is_ascii_digit())
                && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !matches!(f.as_str(), "true" | "false" | "null" | "in")
        };
        (!fields.is_empty() && fields.iter().all(plain)).then_some(Path::Value(fields))
    }
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

impl Expr {
    /// Compiles `source`; it may only name the record's variables.
    pub fn compile(source: &str) -> Result<Expr, ExprError> {
        let error = |reason: String| ExprError {
            source_text: source.to_string(),
            reason,
        };
        let program = cel::Program::compile(source).map_err(|e| error(e.to_string()))?;
        let references = program.references();
        if let Some(unknown) = references
            .variables()
            .into_iter()
            .find(|v| !VARIABLES.contains(v))
        {
            return Err(error(format!(
                "`{unknown}` is not a variable here; use one of {}, e.g. value.{unknown}",
                VARIABLES.join(", ")
            )));
        }
        Ok(Expr {
            source: source.to_string(),
            program: std::sync::Arc::new(program),
            path: Path::parse(source),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expression's value for one record, as JSON.
    pub fn eval(&self, record: &Bindings) -> Result<Value, ExprError> {
        match &self.path {
            Some(Path::Key) => return Ok(record.vars.key.map_or(Value::Null, Value::from)),
            Some(Path::Value(fields)) => {
                let mut at = record.vars.value;
                for field in fields {
                    at = match at {
                        Value::Object(map) => map.get(field).ok_or_else(|| ExprError {
                            source_text: self.source.clone(),
                            reason: format!("No such key: {field}"),
                        })?,
                        Value::Null => return Ok(Value::Null),
                        other => {
                            return Err(ExprError {
                                source_text: self.source.clone(),
                                reason: format!(
                                    "`{field}` of a {} that has no fields",
                                    kind(other)
                                ),
                            });
                        }
                    };
                }
                return Ok(at.clone());
            }
            None => {}
        }
        let value = self
            .program
            .execute(record.context())
            .map_err(|e| ExprError {
                source_text: self.source.clone(),
                reason: e.to_string(),
            })?;
        value.json().map_err(|e| ExprError {
            source_text: self.source.clone(),
            reason: e.to_string(),
        })
    }

    /// A condition: true or false, anything else is an error.
    pub fn test(&self, record: &Bindings) -> Result<bool, ExprError> {
        match self.eval(record)? {
            Value::Bool(b) => Ok(b),
            other => Err(ExprError {
                source_text: self.source.clone(),
                reason: format!("gives {other}, not true or false"),
            }),
        }
    }
}

/// One record's variables, turned into CEL values once, on the first expression that needs
/// them.
pub struct Bindings<'a> {
    vars: Variables<'a>,
    context: std::sync::OnceLock<cel::Context<'static, 'static>>,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// A record's fields as expressions see them.
pub struct Variables<'a> {
    pub value: &'a Value,
    pub key: Option<&'a str>,
    pub headers: &'a [(String, String)],
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub type_name: Option<&'a str>,
}

impl<'a> Bindings<'a> {
    pub fn new(vars: Variables<'a>) -> Bindings<'a> {
        Bindings {
            vars,
            context: std::sync::OnceLock::new(),
        }
    }

    fn context(&self) -> &cel::Context<'static, 'static> {
        self.context.get_or_init(|| cel_context(&self.vars))
    }

    /// Only `value` set: for expressions on a record made by a join or a processor.
    pub fn value_only(value: &'a Value, topic: &'a str) -> Bindings<'a> {
        Bindings::new(Variables {
            value,
            key: None,
            headers: &[],
            topic,
            partition: -1,
            offset: -1,
            timestamp: None,
            type_name: None,
        })
    }
}

fn cel_context(v: &Variables<'_>) -> cel::Context<'static, 'static> {
    {
        // The standard library is built once: building it per record cost most of a record's
        // time (benches/stream.rs).
        static STDLIB: std::sync::OnceLock<std::sync::Arc<cel::Env>> = std::sync::OnceLock::new();
        let env = STDLIB.get_or_init(|| std::sync::Arc::new(cel::Env::stdlib()));
        let mut context = cel::Context::with_env(env.clone());
        context.add_variable_from_value("value", to_cel(v.value));
        context.add_variable_from_value("key", v.key.map_or(cel::Value::Null, |k| k.into()));
        let headers: std::collections::HashMap<String, String> =
            v.headers.iter().cloned().collect();
        context.add_variable_from_value("headers", headers);
        context.add_variable_from_value("topic", v.topic);
        context.add_variable_from_value("partition", i64::from(v.partition));
        context.add_variable_from_value("offset", v.offset);
        context.add_variable_from_value(
            "timestamp",
            v.timestamp.map_or(cel::Value::Null, cel::Value::Int),
        );
        context.add_variable_from_value("type", v.type_name.map_or(cel::Value::Null, |t| t.into()));
        context
    }
}

/// JSON as CEL sees it. Whole numbers are `int` (CEL does not mix `int` and `uint`, and
/// `value.amount * 100` must work whatever the sign of the amount).
fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::from(s.as_str()),
        Value::Array(items) => {
            cel::Value::List(std::sync::Arc::new(items.iter().map(to_cel).collect()))
        }
        Value::Object(fields) => {
            let map: std::collections::HashMap<String, cel::Value> =
                fields.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            cel::Value::from(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bind<'a>(value: &'a Value, headers: &'a [(String, String)]) -> Bindings<'a> {
        Bindings::new(Variables {
            value,
            key: Some("acc-1"),
            headers,
            topic: "orders",
            partition: 3,
            offset: 42,
            timestamp: Some(1_700_000_000_000),
            type_name: Some("com.shop.Delivered"),
        })
    }

    #[test]
    fn expressions_see_the_record() {
        let record = json!({"amount": 120.5, "account": {"id": "a1"}, "tags": ["x"], "count": 7});
        let headers = [(
            "item_type_name".to_string(),
            "com.shop.Delivered".to_string(),
        )];
        let b = bind(&record, &headers);
        let eval = |s: &str| Expr::compile(s).unwrap().eval(&b).unwrap();
        assert_eq!(eval("value.amount > 100.0"), json!(true));
        assert_eq!(eval("value.account.id + '-' + key"), json!("a1-acc-1"));
        assert_eq!(eval("headers.item_type_name"), json!("com.shop.Delivered"));
        assert_eq!(eval("[topic, partition, offset]"), json!(["orders", 3, 42]));
        assert_eq!(
            eval("type == 'com.shop.Delivered' && size(value.tags) == 1"),
            json!(true)
        );
        assert_eq!(eval("has(value.missing)"), json!(false));
        assert_eq!(eval("value.count * 100"), json!(700));
        // Plain paths are read directly, with CEL's answers.
        assert_eq!(eval("value.account.id"), json!("a1"));
        assert_eq!(eval("value.amount"), json!(120.5));
        assert_eq!(eval("key"), json!("acc-1"));
        let missing = Expr::compile("value.nothing")
            .unwrap()
            .eval(&b)
            .unwrap_err();
        assert!(
            missing.to_string().contains("No such key: nothing"),
            "{missing}"
        );
    }

    #[test]
    fn expressions_are_shared_across_threads() {
        fn check<T: Send + Sync>() {}
        check::<Expr>();
    }

    #[test]
    fn an_unknown_variable_or_bad_syntax_is_refused_at_load() {
        let e = Expr::compile("amount > 1").unwrap_err();
        assert!(e.to_string().contains("`amount` is not a variable"), "{e}");
        assert!(Expr::compile("value.amount >").is_err());
    }

    #[test]
    fn a_condition_that_is_not_a_boolean_is_an_error() {
        let record = json!({"amount": 1});
        let e = Expr::compile("value.amount")
            .unwrap()
            .test(&bind(&record, &[]))
            .unwrap_err();
        assert!(e.to_string().contains("not true or false"), "{e}");
        let missing = Expr::compile("value.nothing > 1")
            .unwrap()
            .test(&bind(&record, &[]));
        assert!(missing.is_err());
    }
}
