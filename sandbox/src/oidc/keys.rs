//! The provider's signing key: RSA 2048, made at start with aws-lc-rs (already in the build as `jsonwebtoken`'s
//! crypto backend, so no new crypto crate), signing RS256 JWTs and published as a JWK.
//!
//! Why not `jsonwebtoken` for signing: its RSA signer wants a PKCS#1 DER private key, and aws-lc-rs hands out
//! PKCS#8; signing the compact JWS here is a dozen lines.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl SigningKey {
    pub(crate) fn generate() -> std::io::Result<Self> {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| std::io::Error::other("could not generate an RSA key"))?;
        Ok(Self {
            kid: format!(
                "sandbox-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// The public key as a JWK (RFC 7517), as a provider's `jwks_uri` lists it.
    pub(crate) fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// A compact RS256 JWS of `claims`, with this key's `kid`.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": self.kid });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        // Signing with a key we generated cannot fail short of the library breaking: an empty signature then, which
        // every verifier refuses.
        if self
            .pair
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                input.as_bytes(),
                &mut signature,
            )
            .is_err()
        {
            signature.clear();
        }
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}
