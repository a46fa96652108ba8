//! Which failures a rerun cannot fix: configuration, authorization, a schema or record that
//! does not decode, bounds and data loss that need a decision. `runner once` exits 2 for
//! them, so a Kubernetes podFailurePolicy can stop retrying; everything else (a broker or
//! store that is down, a lock held by another run) may pass on the next attempt.

use crate::aggregate::state::StateError;
use crate::dead_letter_topic::DeadLetterError;
use crate::jobs::aggregate::AggregateError;
use crate::jobs::export::ExportError;
use crate::lock::LockError;
use crate::plan::PlanError;
use crate::progress::ProgressError;
use crate::read::ReadError;
use crate::sink::SinkError;
use crate::write::WriteError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};

/// Credentials, ACLs or client settings that Kafka refused.
pub fn kafka_permanent(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::ClientCreation(_) | KafkaError::ClientConfig(..)
    ) || matches!(
        e.rdkafka_error_code(),
        Some(
            Code::Authentication
                | Code::SaslAuthenticationFailed
                | Code::UnsupportedSASLMechanism
                | Code::TopicAuthorizationFailed
                | Code::GroupAuthorizationFailed
                | Code::ClusterAuthorizationFailed
                | Code::InvalidConfig
        )
    )
}

impl SinkError {
    pub fn is_permanent(&self) -> bool {
        use crate::sink::store::{Cause, cause};
        match self {
            SinkError::Open { .. } => true,
            // A missing container is not permanent: a NotFound also means a missing object.
            SinkError::Write { source, .. } | SinkError::Read { source, .. } => {
                cause(source) == Cause::Denied
            }
            _ => false,
        }
    }
}

impl PlanError {
    pub fn is_permanent(&self) -> bool {
        match self {
            PlanError::Metadata { source, .. }
            | PlanError::Watermarks { source, .. }
            | PlanError::Committed { source, .. }
            | PlanError::Times { source, .. } => kafka_permanent(source),
            PlanError::UnknownTopic { .. }
            | PlanError::UnknownPartition { .. }
            | PlanError::DataLoss { .. }
            | PlanError::BeyondEnd { .. }
            | PlanError::Bounds { .. } => true,
        }
    }
}

impl ReadError {
    pub fn is_permanent(&self) -> bool {
        match self {
            ReadError::Assign { source, .. }
            | ReadError::Consume { source, .. }
            | ReadError::Kafka { source, .. } => kafka_permanent(source),
            ReadError::Stalled { .. } => false,
        }
    }
}

impl LockError {
    pub fn is_permanent(&self) -> bool {
        match self {
            LockError::Held { .. } | LockError::Lost { .. } => false,
            LockError::Corrupt { .. } => true,
            LockError::Sink(e) => e.is_permanent(),
        }
    }
}

impl ProgressError {
    pub fn is_permanent(&self) -> bool {
        match self {
            ProgressError::Sink(e) => e.is_permanent(),
            ProgressError::Corrupt { .. } => true,
            ProgressError::Conflict { .. }
            | ProgressError::Contended { .. }
            | ProgressError::ClaimExpired { .. }
            | ProgressError::Claimed { .. } => false,
        }
    }
}

impl DeadLetterError {
    pub fn is_permanent(&self) -> bool {
        match self {
            DeadLetterError::Producer { source, .. } => kafka_permanent(source),
            DeadLetterError::Delivery { .. } => false,
        }
    }
}

impl ExportError {
    pub fn is_permanent(&self) -> bool {
        match self {
            ExportError::Consumer { .. } | ExportError::Panic(_) => true,
            ExportError::Plan(e) => e.is_permanent(),
            ExportError::Read(e) => e.is_permanent(),
            ExportError::Decode(e) => !e.is_transient(),
            ExportError::Write(WriteError::Parquet { .. }) => true,
            ExportError::Write(WriteError::Sink(e)) => e.is_permanent(),
            ExportError::Progress(e) => e.is_permanent(),
            ExportError::DeadLetter(e) => e.is_permanent(),
            ExportError::Lock(e) => e.is_permanent(),
        }
    }
}

impl AggregateError {
    pub fn is_permanent(&self) -> bool {
        match self {
            AggregateError::Config { .. }
            | AggregateError::Consumer { .. }
            | AggregateError::DeadLetter { .. }
            | AggregateError::Accumulate { .. } => true,
            AggregateError::Plan(e) => e.is_permanent(),
            AggregateError::Read(e) => e.is_permanent(),
            AggregateError::Decode(e) => !e.is_transient(),
            AggregateError::DeadLetterTopic(e) => e.is_permanent(),
            AggregateError::State(StateError::Sink(e)) => e.is_permanent(),
            AggregateError::State(StateError::Conflict { .. }) => false,
            AggregateError::State(_) => true,
            AggregateError::Lock(e) => e.is_permanent(),
            AggregateError::Output { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_credentials_and_acls_are_permanent_and_outages_are_not() {
        assert!(kafka_permanent(&KafkaError::MetadataFetch(
            Code::TopicAuthorizationFailed
        )));
        assert!(kafka_permanent(&KafkaError::MetadataFetch(
            Code::SaslAuthenticationFailed
        )));
        assert!(kafka_permanent(&KafkaError::ClientCreation("bad".into())));
        assert!(!kafka_permanent(&KafkaError::MetadataFetch(
            Code::AllBrokersDown
        )));
        assert!(!kafka_permanent(&KafkaError::MetadataFetch(
            Code::OperationTimedOut
        )));
        let missing = PlanError::UnknownTopic { topic: "t".into() };
        assert!(ExportError::Plan(missing).is_permanent());
        let down = PlanError::Metadata {
            topic: "t".into(),
            source: KafkaError::MetadataFetch(Code::AllBrokersDown),
        };
        assert!(!ExportError::Plan(down).is_permanent());
    }
}
