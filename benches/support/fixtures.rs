//! The benchmarks' 20-field record in each format, and a Schema Registry to frame Avro with.

use prost::Message;
use prost_reflect::{DynamicMessage, Value as PValue};
use runner::registry::{EmbeddedRegistry, Registry, SchemaType};
use std::sync::Arc;

pub const AVRO: &str = r#"{"type": "record", "name": "Payment", "fields": [
  {"name": "id", "type": "long"}, {"name": "account", "type": "string"},
  {"name": "amount", "type": "double"}, {"name": "currency", "type": "string"},
  {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "DONE", "FAILED"]}},
  {"name": "channel", "type": "string"}, {"name": "country", "type": "string"},
  {"name": "city", "type": "string"}, {"name": "zip", "type": "int"},
  {"name": "merchant", "type": "string"}, {"name": "category", "type": "string"},
  {"name": "mcc", "type": "int"}, {"name": "card_last4", "type": "string"},
  {"name": "approved", "type": "boolean"}, {"name": "fee", "type": "double"},
  {"name": "tax", "type": "double"}, {"name": "note", "type": ["null", "string"]},
  {"name": "reference", "type": "string"}, {"name": "score", "type": "double"}]}"#;

pub const PROTO: &str = r#"syntax = "proto3";
message Payment {
  int64 id = 1; string account = 2; double amount = 3; string currency = 4; int64 ts = 5;
  enum Status { NEW = 0; DONE = 1; FAILED = 2; } Status status = 6;
  string channel = 7; string country = 8; string city = 9; int32 zip = 10;
  string merchant = 11; string category = 12; int32 mcc = 13; string card_last4 = 14;
  bool approved = 15; double fee = 16; double tax = 17; optional string note = 18;
  string reference = 19; double score = 20;
}"#;

pub struct Fields {
    id: i64,
    account: String,
    amount: f64,
    ts: i64,
    status: u32,
    city: String,
    zip: i32,
    merchant: String,
    mcc: i32,
    last4: String,
    note: Option<String>,
    reference: String,
}

pub fn fields(i: usize) -> Fields {
    Fields {
        id: i as i64,
        account: format!("ACC{:06}", i % 50_000),
        amount: (i % 10_000) as f64 / 7.0,
        ts: 1_795_384_800_000 + i as i64,
        status: (i % 3) as u32,
        city: format!("city{}", i % 500),
        zip: (i % 99_999) as i32,
        merchant: format!("merchant-{}", i % 2_000),
        mcc: (5000 + i % 999) as i32,
        last4: format!("{:04}", i % 10_000),
        note: i.is_multiple_of(4).then(|| format!("note {i}")),
        reference: format!("REF-{i:012}"),
    }
}

pub fn json(f: &Fields) -> Vec<u8> {
    let status = ["NEW", "DONE", "FAILED"][f.status as usize];
    serde_json::json!({
        "id": f.id, "account": f.account, "amount": f.amount, "currency": "EUR", "ts": f.ts,
        "status": status, "channel": "web",
        "country": "FR", "city": f.city, "zip": f.zip, "merchant": f.merchant,
        "category": "groceries", "mcc": f.mcc, "card_last4": f.last4, "approved": f.id % 5 != 0,
        "fee": 0.25, "tax": f.amount * 0.2, "note": f.note, "reference": f.reference,
        "score": 0.5
    })
    .to_string()
    .into_bytes()
}

pub fn avro_value(f: &Fields) -> apache_avro::types::Value {
    use apache_avro::types::Value as V;
    let s = |x: &str| V::String(x.to_string());
    V::Record(vec![
        ("id".into(), V::Long(f.id)),
        ("account".into(), s(&f.account)),
        ("amount".into(), V::Double(f.amount)),
        ("currency".into(), s("EUR")),
        ("ts".into(), V::TimestampMillis(f.ts)),
        (
            "status".into(),
            V::Enum(
                f.status,
                ["NEW", "DONE", "FAILED"][f.status as usize].into(),
            ),
        ),
        ("channel".into(), s("web")),
        ("country".into(), s("FR")),
        ("city".into(), s(&f.city)),
        ("zip".into(), V::Int(f.zip)),
        ("merchant".into(), s(&f.merchant)),
        ("category".into(), s("groceries")),
        ("mcc".into(), V::Int(f.mcc)),
        ("card_last4".into(), s(&f.last4)),
        ("approved".into(), V::Boolean(f.id % 5 != 0)),
        ("fee".into(), V::Double(0.25)),
        ("tax".into(), V::Double(f.amount * 0.2)),
        (
            "note".into(),
            match &f.note {
                Some(n) => V::Union(1, Box::new(s(n))),
                None => V::Union(0, Box::new(V::Null)),
            },
        ),
        ("reference".into(), s(&f.reference)),
        ("score".into(), V::Double(0.5)),
    ])
}

pub fn proto(d: &prost_reflect::MessageDescriptor, f: &Fields) -> Vec<u8> {
    let mut m = DynamicMessage::new(d.clone());
    let mut set = |name: &str, v: PValue| m.set_field_by_name(name, v);
    set("id", PValue::I64(f.id));
    set("account", PValue::String(f.account.clone()));
    set("amount", PValue::F64(f.amount));
    set("currency", PValue::String("EUR".into()));
    set("ts", PValue::I64(f.ts));
    set("status", PValue::EnumNumber(f.status as i32));
    set("channel", PValue::String("web".into()));
    set("country", PValue::String("FR".into()));
    set("city", PValue::String(f.city.clone()));
    set("zip", PValue::I32(f.zip));
    set("merchant", PValue::String(f.merchant.clone()));
    set("category", PValue::String("groceries".into()));
    set("mcc", PValue::I32(f.mcc));
    set("card_last4", PValue::String(f.last4.clone()));
    set("approved", PValue::Bool(f.id % 5 != 0));
    set("fee", PValue::F64(0.25));
    set("tax", PValue::F64(f.amount * 0.2));
    if let Some(n) = &f.note {
        set("note", PValue::String(n.clone()));
    }
    set("reference", PValue::String(f.reference.clone()));
    set("score", PValue::F64(0.5));
    m.encode_to_vec()
}

/// The in-process registry and a client of it.
pub fn registry(rt: &tokio::runtime::Runtime) -> (EmbeddedRegistry, Arc<Registry>) {
    let server = EmbeddedRegistry::start(rt.handle()).unwrap();
    let connections: runner::config::Connections = serde_json::from_value(
        serde_json::json!({"bootstrap_servers": "unused", "schema_registry_url": server.url()}),
    )
    .unwrap();
    let registry = Registry::from_connections(&connections, rt.handle().clone())
        .unwrap()
        .unwrap();
    (server, Arc::new(registry))
}

/// Encodes record `i` in each format: Avro framed under a registered subject, unframed
/// Protobuf, the seeds' Protobuf `bank.Transaction` (`transaction`), JSON (also the bytes of
/// `raw`).
pub struct Values {
    pub avro_id: u32,
    avro_schema: apache_avro::Schema,
    pub payment: prost_reflect::MessageDescriptor,
    transaction: prost_reflect::MessageDescriptor,
}

/// The seeds' Protobuf schema: `bank.Transaction`, three strings, a Timestamp and an amount.
pub const TRANSACTION_PROTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/schemas/transaction.proto"
);

impl Values {
    pub fn new(registry: &Registry, subject: &str) -> Values {
        let avro_id = registry.register(subject, SchemaType::Avro, AVRO).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.proto"), PROTO).unwrap();
        let fds = protox::compile(["p.proto"], [dir.path()]).unwrap();
        let pool = prost_reflect::DescriptorPool::from_file_descriptor_set(fds).unwrap();
        let path = std::path::Path::new(TRANSACTION_PROTO);
        let fds = protox::compile([path.file_name().unwrap()], [path.parent().unwrap()]).unwrap();
        let seeds = prost_reflect::DescriptorPool::from_file_descriptor_set(fds).unwrap();
        Values {
            avro_id,
            avro_schema: apache_avro::Schema::parse_str(AVRO).unwrap(),
            payment: pool.get_message_by_name("Payment").unwrap(),
            transaction: seeds.get_message_by_name("bank.Transaction").unwrap(),
        }
    }

    /// Record `i` as the seeds' `bank.Transaction`.
    fn transaction(&self, i: usize) -> Vec<u8> {
        let at = self
            .transaction
            .get_field_by_name("transaction_datetime")
            .unwrap();
        let mut stamp = DynamicMessage::new(at.kind().as_message().unwrap().clone());
        stamp.set_field_by_name("seconds", PValue::I64(1_795_000_000 + i as i64));
        stamp.set_field_by_name("nanos", PValue::I32((i % 1000) as i32 * 1_000_000));
        let mut m = DynamicMessage::new(self.transaction.clone());
        m.set_field_by_name("transaction_id", PValue::String(format!("tx-{i:08}")));
        m.set_field_by_name(
            "account_number",
            PValue::String(format!("ACC{:06}", i % 5000)),
        );
        m.set_field_by_name(
            "transaction_reference",
            PValue::String(format!("ref-{}", i * 7)),
        );
        m.set_field_by_name("transaction_datetime", PValue::Message(stamp));
        m.set_field_by_name("amount", PValue::F64(i as f64 / 7.0));
        m.encode_to_vec()
    }

    /// The unframed Avro body of record `i`.
    pub fn avro_body(&self, i: usize) -> Vec<u8> {
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&self.avro_schema)
            .build()
            .unwrap();
        writer.write_value_to_vec(avro_value(&fields(i))).unwrap()
    }

    pub fn encode(&self, format: &str, i: usize) -> Vec<u8> {
        match format {
            "avro" => [&[0u8][..], &self.avro_id.to_be_bytes(), &self.avro_body(i)].concat(),
            "protobuf" => proto(&self.payment, &fields(i)),
            "transaction" => self.transaction(i),
            _ => json(&fields(i)),
        }
    }
}

/// Starts this benchmark again as its broker child (`BENCH_CHILD=broker`) and waits for its
/// `ready <bootstrap> <registry>` line. Closing the child's stdin stops it.
pub fn spawn_broker() -> (std::process::Child, String, String) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_CHILD", "broker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    let (bootstrap, registry) = ready
        .strip_prefix("ready ")
        .and_then(|r| r.split_once(' '))
        .expect("the broker child announces itself");
    (child, bootstrap.to_string(), registry.to_string())
}

/// The broker child's end: announce the addresses, then serve until stdin closes.
pub fn serve(kafka: &runner::embedded::EmbeddedKafka, server: &EmbeddedRegistry) {
    use std::io::Write;
    println!("ready {} {}", kafka.bootstrap_servers(), server.url());
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    while std::io::stdin()
        .read_line(&mut line)
        .map(|n| n > 0)
        .unwrap_or(false)
    {}
}

/// A child process's wall seconds, its own CPU seconds (wait4) and peak RSS in KiB (VmHWM).
pub struct Measured {
    pub seconds: f64,
    pub cpu: f64,
    pub peak_kb: u64,
}

/// Runs a child to completion: wall time, its own CPU time (wait4) and peak RSS (VmHWM).
pub fn measure(cmd: &mut std::process::Command) -> Measured {
    let started = std::time::Instant::now();
    // Reaped below with wait4, which also reports the child's own CPU time.
    let pid = cmd.spawn().unwrap().id() as i32;
    let status_file = format!("/proc/{pid}/status");
    let mut peak_kb = 0;
    loop {
        // WNOHANG: reap when done, and keep sampling VmHWM until then.
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is this process's own child; status and usage are valid out-pointers.
        let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if done == pid {
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "{cmd:?} failed"
            );
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            return Measured {
                seconds: started.elapsed().as_secs_f64(),
                cpu: secs(usage.ru_utime) + secs(usage.ru_stime),
                peak_kb,
            };
        }
        let hwm = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        });
        peak_kb = peak_kb.max(hwm.unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The rows of every Parquet file under `dir` (footers only): a run's figures count only
/// when it exported every record.
pub fn parquet_rows(dir: &std::path::Path) -> u64 {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut rows = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rows += parquet_rows(&path);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
            rows += reader.metadata().file_metadata().num_rows() as u64;
        }
    }
    rows
}
