//! librdkafka client settings derived from `connections.json`.

use crate::config::Connections;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use std::time::{Duration, Instant};

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
    consumer_config(conn, group_id, 4, &[])
}

/// The prefetch, in KiB, of each partition when `partitions` are read at once: librdkafka
/// applies `queued.max.messages.kbytes` to every partition queue of a consumer that reads from
/// queues of its own, as the bounded reader does, so 64 MiB are shared out, 1 to 16 MiB each.
pub fn prefetch_kbytes(partitions: usize) -> usize {
    (64 * 1024 / partitions.max(1)).clamp(1024, 16 * 1024)
}

/// The bounded reader's consumer for reading `partitions` at once (its prefetch shared
/// between them).
pub fn reading_consumer_config(
    conn: &Connections,
    group_id: &str,
    partitions: usize,
) -> ClientConfig {
    // A bounded read never waits for records still to come. A broker holds a fetch for
    // fetch.wait.max.ms (500 ms by default) when its partitions are drained, and a partition
    // assigned meanwhile (the reader takes PARTITIONS_AT_ONCE at a time) waits for that
    // fetch: 1,000 partitions of 200 records took 11.4 s instead of 4.4 s. (A continuous
    // member keeps the default: it does wait for new records.)
    consumer_config(conn, group_id, partitions, &[("fetch.wait.max.ms", "10")])
}

/// The settings every export consumer shares, then `extra`, then the user's passthrough.
fn consumer_config(
    conn: &Connections,
    group_id: &str,
    partitions: usize,
    extra: &[(&str, &str)],
) -> ClientConfig {
    let mut cfg = client_config(conn);
    cfg.set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "error")
        .set("isolation.level", "read_committed")
        // librdkafka prefetches up to 64 MiB per partition by default; shared out, the
        // prefetch of many partitions stays within 64 MiB (docs/performance.md, scaling).
        .set(
            "queued.max.messages.kbytes",
            prefetch_kbytes(partitions).to_string(),
        )
        // Once that queue was full, librdkafka waited a whole second (its default) before it
        // fetched again: half the wall time of a 36 MB range went to that wait.
        .set("fetch.queue.backoff.ms", "10");
    for (key, value) in extra {
        cfg.set(*key, *value);
    }
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

/// Closes a consumer of a group that is no longer read, before it is dropped. rdkafka's drop
/// closes it too, but waits for the close in polls of 100 ms, and the close is done within
/// the first millisecond: 100 ms per consumer, two per exported topic, a quarter of the wall
/// time of a 300,000-record export. The drop then finds the group closed and says so at
/// error level, which `logging` leaves out (nothing went wrong).
pub fn close<C: ConsumerContext>(consumer: &BaseConsumer<C>) {
    if consumer.close_queue().is_err() {
        return;
    }
    // The drop waits as long as it takes; this only saves the wait when the close is quick.
    let give_up = Instant::now() + Duration::from_secs(1);
    while !consumer.closed() && Instant::now() < give_up {
        // Nothing polled here is wanted: the consumer's reading is over.
        let _ = consumer.poll(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::consumer::{BaseConsumer, Consumer};

    #[test]
    fn close_leaves_a_consumer_of_a_group_closed_and_one_without_a_group_alone() {
        let kafka = crate::embedded::EmbeddedKafka::start().unwrap();
        kafka.create_topic("t", 1).unwrap();
        let conn: crate::config::Connections = serde_json::from_value(serde_json::json!({
            "bootstrap_servers": kafka.bootstrap_servers()
        }))
        .unwrap();
        let consumer: BaseConsumer = super::export_consumer_config(&conn, "g").create().unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset("t", 0, rdkafka::Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let _ = consumer.poll(std::time::Duration::from_millis(10));
        assert!(!consumer.closed());
        super::close(&consumer);
        assert!(consumer.closed());
        // Without a group there is nothing to close: it returns at once.
        let mut plain = super::client_config(&conn);
        plain.set("enable.partition.eof", "true");
        let plain: BaseConsumer = plain.create().unwrap();
        super::close(&plain);
        assert!(!plain.closed());
    }

    #[test]
    fn the_prefetch_is_shared_out_between_1_and_16_mib_a_partition() {
        assert_eq!(super::prefetch_kbytes(1), 16 * 1024);
        assert_eq!(super::prefetch_kbytes(4), 16 * 1024);
        assert_eq!(super::prefetch_kbytes(32), 2 * 1024);
        assert_eq!(super::prefetch_kbytes(400), 1024);
    }

    #[test]
    fn only_the_bounded_reader_skips_the_fetch_wait_and_the_user_setting_wins() {
        let conn = |props: serde_json::Value| -> crate::config::Connections {
            serde_json::from_value(serde_json::json!({
                "bootstrap_servers": "localhost:9092", "kafka_properties": props
            }))
            .unwrap()
        };
        let plain = conn(serde_json::json!({}));
        let wait = |cfg: rdkafka::ClientConfig| cfg.get("fetch.wait.max.ms").map(str::to_string);
        assert_eq!(
            wait(super::reading_consumer_config(&plain, "g", 32)).as_deref(),
            Some("10")
        );
        assert_eq!(wait(super::export_consumer_config(&plain, "g")), None);
        let tuned = conn(serde_json::json!({"fetch.wait.max.ms": "250"}));
        assert_eq!(
            wait(super::reading_consumer_config(&tuned, "g", 32)).as_deref(),
            Some("250")
        );
    }
}
