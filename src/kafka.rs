//! librdkafka client settings derived from `connections.json`.

use crate::config::Connections;
use rdkafka::ClientConfig;

/// Client settings shared by every consumer and producer runner creates.
pub fn client_config(conn: &Connections) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &conn.bootstrap_servers);
    cfg.set("client.id", "runner");
    let protocol = match (&conn.ssl_config, &conn.sasl) {
        (Some(_), Some(_)) => Some("SASL_SSL"),
        (Some(_), None) => Some("SSL"),
        (None, Some(_)) => Some("SASL_PLAINTEXT"),
        (None, None) => None,
    };
    if let Some(protocol) = protocol {
        cfg.set("security.protocol", protocol);
    }
    if let Some(ssl) = &conn.ssl_config {
        let files = [
            ("ssl.ca.location", &ssl.ca),
            ("ssl.certificate.location", &ssl.cert),
            ("ssl.key.location", &ssl.key),
        ];
        for (key, path) in files {
            if let Some(path) = path {
                cfg.set(key, path.to_string_lossy());
            }
        }
        if let Some(password) = &ssl.key_password {
            cfg.set("ssl.key.password", password.expose());
        }
    }
    if let Some(sasl) = &conn.sasl {
        cfg.set("sasl.mechanisms", sasl.mechanism.as_str());
        cfg.set("sasl.username", &sasl.username);
        cfg.set("sasl.password", sasl.password.expose());
    }
    for (key, value) in &conn.kafka_properties {
        cfg.set(key, value);
    }
    cfg
}

/// Settings for a bounded export consumer of one group: manual assignment and commits, and
/// an error rather than a silent jump when an offset is out of range.
pub fn export_consumer_config(conn: &Connections, group_id: &str) -> ClientConfig {
    let mut cfg = client_config(conn);
    cfg.set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "error")
        .set("isolation.level", "read_committed")
        // librdkafka prefetches up to 64 MiB by default; 16 MiB keeps a broker of many
        // partitions from filling memory ahead of the writer (docs/performance.md, scaling)
        // at no cost in throughput.
        .set("queued.max.messages.kbytes", "16384")
        // Once that queue was full, librdkafka waited a whole second (its default) before it
        // fetched again: half the wall time of a 36 MB range went to that wait.
        .set("fetch.queue.backoff.ms", "10");
    // Passthrough wins: users may tune fetch sizes or isolation on purpose.
    for (key, value) in &conn.kafka_properties {
        cfg.set(key, value);
    }
    cfg
}

/// Producer settings for records that must not be lost or duplicated by retries.
pub fn acknowledged_producer_config(conn: &Connections) -> ClientConfig {
    let mut cfg = client_config(conn);
    cfg.set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5");
    cfg
}

/// Collects the delivery failures librdkafka reports, so a producer can prove every record
/// was acknowledged.
#[derive(Default)]
pub struct Deliveries {
    failures: std::sync::Mutex<Vec<String>>,
}

impl Deliveries {
    /// The failures reported so far, cleared.
    pub fn take_failures(&self) -> Vec<String> {
        self.failures
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or_default()
    }
}

impl rdkafka::ClientContext for Deliveries {}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result
            && let Ok(mut failures) = self.failures.lock()
        {
            failures.push(e.to_string());
        }
    }
}

/// Queues a record, waiting while librdkafka's queue is full; delivery is reported later.
pub fn send<C, K, P>(
    producer: &rdkafka::producer::ThreadedProducer<C>,
    record: rdkafka::producer::BaseRecord<'_, K, P>,
) -> Result<(), rdkafka::error::KafkaError>
where
    C: rdkafka::producer::ProducerContext<DeliveryOpaque = ()> + 'static,
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    let mut pending = record;
    loop {
        match producer.send(pending) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
                pending = back;
            }
            Err((e, _)) => return Err(e),
        }
    }
}
