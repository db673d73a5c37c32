//! The registration throttles (see `crate::throttle`) in the table: one GCRA item per client address or e-mail,
//! taken with the conditional writes of the HubSpot budget (`gcra`), expiring by TTL once it holds nothing.
//!
//! The item's key is a keyed hash (HMAC-SHA256) of the address or e-mail, never the value: the table is read by
//! operators and backed up, and a plain hash of an IPv4 address or a known e-mail is reversed by trying them all.
//! Without the key (derived from the Stream app secret, which is not in the table) the hashes say nothing, and TTL
//! removes each item minutes after its last registration.

use super::gcra::Cell;
use super::keys::{throttle_pk, THROTTLE_SK};
use crate::budget::RateLimit;
use crate::ports::{BudgetError, StoreError, Throttle};
use crate::throttle::{gcra, Subject};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::time::{Duration, Instant};

/// What the hashing key is derived from the Stream secret with, so it serves no other purpose.
const KEY_CONTEXT: &[u8] = b"chat-sync registration throttle key v1";

#[derive(Debug)]
pub struct DynamoThrottle {
    client: Client,
    table: String,
    key: SecretString,
}

fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail; the fallback keeps the function total.
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

impl DynamoThrottle {
    /// `secret` is the Stream app secret: the hashing key is derived from it.
    pub fn new(client: Client, table: String, secret: &SecretString) -> Self {
        let key = hmac_hex(secret.expose_secret().as_bytes(), KEY_CONTEXT);
        Self {
            client,
            table,
            key: SecretString::from(key),
        }
    }

    /// The item's partition key: `THROTTLE#<kind>#<keyed hash of the value>`.
    pub fn partition_key(&self, subject: &Subject) -> String {
        let message = format!("{}:{}", subject.kind(), subject.value());
        let digest = hmac_hex(self.key.expose_secret().as_bytes(), message.as_bytes());
        throttle_pk(subject.kind(), &digest[..32])
    }
}

#[async_trait]
impl Throttle for DynamoThrottle {
    async fn take(
        &self,
        subject: &Subject,
        limit: RateLimit,
    ) -> Result<Option<Duration>, StoreError> {
        let (emission_ms, tolerance_ms) = gcra(limit);
        let cell = Cell {
            client: &self.client,
            table: &self.table,
            pk: self.partition_key(subject),
            sk: THROTTLE_SK,
            expires: true,
        };
        // A visitor is waiting: never wait for a permit, say when the next one comes.
        match cell.take(emission_ms, tolerance_ms, Instant::now()).await {
            Ok(()) => Ok(None),
            Err(BudgetError::Exhausted { wait, .. }) => Ok(Some(wait)),
            Err(BudgetError::Storage(error)) => Err(error),
        }
    }
}
