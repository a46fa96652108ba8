//! The Confluent Schema Registry: a client that fetches schemas by id (cached for the process,
//! retried with backoff) and, for tests and the demo, a registry served in-process.

mod server;

pub use schema_registry_converter::schema_registry_common::{RegisteredSchema, SchemaType};
pub use server::EmbeddedRegistry;

use crate::config::Connections;
use schema_registry_converter::async_impl::schema_registry::{self as sr, SrSettings};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::SuppliedSchema;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Handle;

/// Attempts of one lookup when the registry answers with a retriable error or not at all.
const ATTEMPTS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "the topic's format needs a Schema Registry; set schema_registry_url in connections.json"
    )]
    NotConfigured,
    #[error(
        "Schema Registry {url}: cannot be used ({reason}); check schema_registry_url and its credentials in connections.json"
    )]
    Settings { url: String, reason: String },
    #[error(
        "Schema Registry {url} is unreachable ({reason}); check schema_registry_url, the network, the credentials and, for a private CA, schema_registry_ca. No record was set aside; rerun when it answers"
    )]
    Unreachable { url: String, reason: String },
    #[error("Schema Registry {url} has no schema with id {id} ({reason})")]
    UnknownId {
        url: String,
        id: u32,
        reason: String,
    },
    #[error(
        "Schema Registry {url} rejected the credentials ({reason}); check schema_registry_username and schema_registry_password in connections.json"
    )]
    Rejected { url: String, reason: String },
    #[error("Schema Registry {url} failed: {reason}")]
    Failed { url: String, reason: String },

    #[error("Schema Registry {url}: cannot register under subject {subject}: {reason}")]
    Register {
        url: String,
        subject: String,
        reason: String,
    },
}

impl RegistryError {
    /// True when the record named the problem (an id the registry does not know), false when
    /// the registry itself failed and nothing can be concluded about the record.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RegistryError::Unreachable { .. } | RegistryError::Failed { .. }
        )
    }

    pub fn is_about_the_record(&self) -> bool {
        matches!(self, RegistryError::UnknownId { .. })
    }
}

pub struct Registry {
    url: String,
    settings: SrSettings,
    cache: Mutex<HashMap<u32, Arc<RegisteredSchema>>>,
    rt: Handle,
}

impl Registry {
    /// The registry of connections.json, if one is configured.
    pub fn from_connections(
        c: &Connections,
        rt: Handle,
    ) -> Result<Option<Registry>, RegistryError> {
        let Some(url) = c.schema_registry_url.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let mut builder = SrSettings::new_builder(url.to_string());
        builder.set_timeout(Duration::from_secs(10));
        if let Some(user) = &c.schema_registry_username {
            let password = c.schema_registry_password.as_ref().map(|p| p.expose());
            builder.set_basic_authorization(user, password);
        }
        let settings_error = |reason: String| RegistryError::Settings {
            url: url.to_string(),
            reason,
        };
        let mut client = reqwest::Client::builder();
        if let Some(ca) = &c.schema_registry_ca {
            let pem = std::fs::read(ca)
                .map_err(|e| settings_error(format!("cannot read {}: {e}", ca.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                settings_error(format!("{} is not a PEM certificate: {e}", ca.display()))
            })?;
            client = client.add_root_certificate(cert);
        }
        let settings = builder
            .build_with(client)
            .map_err(|e| settings_error(e.error))?;
        Ok(Some(Registry {
            url: url.to_string(),
            settings,
            cache: Mutex::new(HashMap::new()),
            rt,
        }))
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema with this id, from the cache or the registry.
    pub fn schema(&self, id: u32) -> Result<Arc<RegisteredSchema>, RegistryError> {
        if let Some(found) = self.cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
            return Ok(found);
        }
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        let schema = loop {
            match self.rt.block_on(sr::get_schema_by_id(id, &self.settings)) {
                Ok(schema) => break schema,
                Err(e) if e.retriable && attempt < ATTEMPTS => {
                    tracing::warn!(id, attempt, error = %e.error, "Schema Registry lookup failed; retrying");
                    std::thread::sleep(delay);
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(self.classify(&e, Some(id))),
            }
        };
        let schema = Arc::new(schema);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(id, schema.clone());
        }
        Ok(schema)
    }

    /// The latest schema registered under a subject.
    pub fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryError> {
        self.rt
            .block_on(sr::get_schema_by_subject_and_version(
                &self.settings,
                subject,
                None,
            ))
            .map_err(|e| RegistryError::Failed {
                url: self.url.clone(),
                reason: format!("no latest schema for subject {subject}: {}", reason(&e)),
            })
    }

    /// Lists the registry's subjects: proves that it answers and accepts the credentials.
    pub fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        self.rt
            .block_on(sr::get_all_subjects(&self.settings))
            .map_err(|e| self.classify(&e, None))
    }

    /// The kind of a failed call: a missing schema `id` (the record's fault), rejected
    /// credentials, an unreachable registry, or another failure.
    fn classify(&self, e: &SRCError, id: Option<u32>) -> RegistryError {
        let (url, reason) = (self.url.clone(), reason(e));
        match id {
            Some(id) if reason.contains("status 404") => {
                RegistryError::UnknownId { url, id, reason }
            }
            _ if reason.contains("status 401") || reason.contains("status 403") => {
                RegistryError::Rejected { url, reason }
            }
            _ if e.retriable => RegistryError::Unreachable { url, reason },
            _ => RegistryError::Failed { url, reason },
        }
    }

    /// Registers a schema under a subject (or finds it there) and returns its id.
    pub fn register(
        &self,
        subject: &str,
        schema_type: SchemaType,
        schema: &str,
    ) -> Result<u32, RegistryError> {
        let supplied = SuppliedSchema::new(None, schema_type, schema.to_string());
        self.rt
            .block_on(sr::post_schema(
                &self.settings,
                subject.to_string(),
                supplied,
            ))
            .map(|r| r.id)
            .map_err(|e| RegistryError::Register {
                url: self.url.clone(),
                subject: subject.to_string(),
                reason: reason(&e),
            })
    }
}

/// The error with its causes, down to the root (a TLS error hides two levels deep).
fn reason(e: &SRCError) -> String {
    let mut text = match &e.cause {
        Some(cause) => format!("{}: {cause}", e.error),
        None => e.error.clone(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
