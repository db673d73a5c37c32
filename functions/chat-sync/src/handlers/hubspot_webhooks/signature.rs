//! HubSpot's request signature v3: `X-HubSpot-Signature-v3` = base64(HMAC-SHA256(app client secret, method + URI +
//! body + `X-HubSpot-Request-Timestamp`)), the timestamp in milliseconds since the epoch. A request older than five
//! minutes is refused (a captured request cannot be replayed later), and so is one dated as far in the future.

use crate::domain::Timestamp;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// HubSpot's window for a request's timestamp, both ways (clock skew).
pub const MAX_AGE_MS: i64 = 5 * 60 * 1000;

/// Why a request's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp headers are required")]
    Missing,
    #[error("X-HubSpot-Request-Timestamp is not within 5 minutes of now")]
    Stale,
    #[error("X-HubSpot-Signature-v3 does not match the request")]
    Invalid,
}

/// What is signed: the request as HubSpot sent it.
pub struct Signed<'a> {
    pub method: &'a str,
    /// The full URL HubSpot called: scheme, host, path and query.
    pub uri: &'a str,
    pub body: &'a [u8],
    pub timestamp: &'a str,
}

impl Signed<'_> {
    fn mac(&self, secret: &SecretString) -> Hmac<Sha256> {
        // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(self.method.as_bytes());
        mac.update(self.uri.as_bytes());
        mac.update(self.body);
        mac.update(self.timestamp.as_bytes());
        mac
    }

    /// The signature HubSpot computes (tests, `sign-events`, the sandbox's deliveries).
    pub fn sign(&self, secret: &SecretString) -> String {
        STANDARD.encode(self.mac(secret).finalize().into_bytes())
    }

    /// Checks `signature` at `now`: the timestamp first (no HMAC work for a replay), then the HMAC in constant time.
    pub fn verify(
        &self,
        secret: &SecretString,
        signature: &str,
        now: Timestamp,
    ) -> Result<(), SignatureError> {
        let at: i64 = self
            .timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::Stale)?;
        if (now.unix_millis() - at).abs() > MAX_AGE_MS {
            return Err(SignatureError::Stale);
        }
        let expected = STANDARD
            .decode(signature.trim())
            .map_err(|_| SignatureError::Invalid)?;
        self.mac(secret)
            .verify_slice(&expected)
            .map_err(|_| SignatureError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(value: &str) -> SecretString {
        SecretString::from(value.to_owned())
    }

    #[test]
    fn matches_hubspots_documented_construction() {
        // Computed independently (Python hmac): base64(HMAC-SHA256("secret", "POSThttps://example.com/hook[]1700000000000")).
        let request = Signed {
            method: "POST",
            uri: "https://example.com/hook",
            body: b"[]",
            timestamp: "1700000000000",
        };
        let now = Timestamp::from_unix_seconds(1_700_000_000).expect("valid");
        let signature = request.sign(&secret("secret"));
        assert_eq!(signature, "0/4DF+YUcmbqY3ggukl+oIJILQ/DMu3iavl4482uHT4=");
        assert_eq!(request.verify(&secret("secret"), &signature, now), Ok(()));
        assert_eq!(
            request.verify(&secret("other"), &signature, now),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            request.verify(&secret("secret"), "not base64!", now),
            Err(SignatureError::Invalid)
        );
        let later = Timestamp::from_unix_seconds(1_700_000_000 + 301).expect("valid");
        assert_eq!(
            request.verify(&secret("secret"), &signature, later),
            Err(SignatureError::Stale)
        );
        let earlier = Timestamp::from_unix_seconds(1_700_000_000 - 301).expect("valid");
        assert_eq!(
            request.verify(&secret("secret"), &signature, earlier),
            Err(SignatureError::Stale)
        );
    }
}
