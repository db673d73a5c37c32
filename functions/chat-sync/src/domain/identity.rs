//! How a visitor was identified, and the optional identity verification for sites whose visitors are signed in.
//!
//! The registration form is public: anyone can type anyone's e-mail. So an e-mail as typed only *links* a
//! conversation to the contact that has it (never changing that contact), and the conversation's header says the
//! e-mail was not verified. A site whose visitors are signed in can vouch for the e-mail instead: its backend signs,
//! for the signed-in user, an **identity token** — a JWT (RFC 7519) signed with HMAC-SHA256 (`"alg":"HS256"`) under
//! `IDENTITY_SECRET`, whose claims are `email` and `exp` (whole seconds since 1970) — the pattern of Intercom's and
//! Zendesk's signed visitor identities — and the widget sends it along. A token that verifies marks the registration
//! verified (and lets it update the contact's names); any other is refused.
//!
//! Invariants:
//! - A registration is verified only by a token whose signature verifies under `IDENTITY_SECRET` (compared in
//!   constant time), whose `email` is the form's e-mail (case-insensitively) and whose `exp` has not passed (with
//!   [`CLOCK_SKEW`] for the site's clock). The signature covers the header and both claims: the expiry cannot be
//!   moved without the secret.
//! - Every token expires: one without an integer `exp`, or whose `exp` is more than [`MAX_LIFETIME`] ahead, is
//!   refused however well signed, because a token that never expires stays a credential for its e-mail wherever a
//!   copy ends up (a cached page, a shared computer, a log). The first format — the bare hex HMAC of the e-mail, with
//!   no expiry — is refused the same way, with no transition period (docs/security.md says why).
//! - Nothing in a token is believed, or reported on, before its signature verifies: a forged or altered token is
//!   only ever "not verified", never "expired".
//! - A token is only ever compared: never stored or logged.

use super::{Email, Timestamp};
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::Sha256;
use std::time::Duration;

/// How far ahead a token's `exp` may be. A site signs a token when it renders the page, so an hour or so is plenty;
/// a day allows for a page left open overnight and catches an `exp` in milliseconds (which would never expire).
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3_600);
/// How late a token is still accepted after its `exp`: the site's clock and ours may differ a little.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// JWTs' base64url, without padding when written; read with or without it (libraries differ).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// The one header this verifier accepts (`typ` is optional); `token_for` writes it.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// How the visitor's e-mail is known to be theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Typed into the form: anyone could have typed it.
    Unverified,
    /// Vouched for by the site (a valid `identityToken`).
    Verified,
}

impl Identity {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Identity::Unverified => "unverified",
            Identity::Verified => "verified",
        }
    }

    /// The stored form back; `None` (items written before identities were recorded) reads as unverified, which is
    /// what every registration was then.
    pub fn parse(stored: Option<&str>) -> Option<Self> {
        match stored {
            None | Some("unverified") => Some(Identity::Unverified),
            Some("verified") => Some(Identity::Verified),
            Some(_) => None,
        }
    }

    /// What a conversation's header says about the visitor (transcript property and timeline note).
    pub fn describe(self) -> &'static str {
        match self {
            Identity::Unverified => "e-mail as typed, not verified",
            Identity::Verified => "e-mail verified by the site",
        }
    }
}

/// The `identityToken` a registration carries, as sent: only ever compared, never stored or logged.
#[derive(Clone)]
pub struct IdentityToken(SecretString);

impl IdentityToken {
    pub fn new(raw: &str) -> Self {
        Self(SecretString::from(raw.trim().to_owned()))
    }
}

/// Checks identity tokens with the site's shared secret (`IDENTITY_SECRET`).
#[derive(Clone)]
pub struct IdentityVerifier {
    secret: SecretString,
}

impl IdentityVerifier {
    pub fn new(secret: SecretString) -> Self {
        Self { secret }
    }

    /// HMAC-SHA256 under the secret over the JWT's signing input, `header.claims` as sent.
    fn mac(&self, header: &str, claims: &str) -> Hmac<Sha256> {
        // HMAC takes keys of any length, so this cannot fail; the fallback key keeps the type total.
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(claims.as_bytes());
        mac
    }

    /// The token a site's backend makes for `email`, valid until `expires`: what docs/security.md's command prints. For
    /// tests and tools; chat-sync itself never issues identity tokens.
    pub fn token_for(&self, email: &Email, expires: Timestamp) -> String {
        let header = BASE64URL.encode(HEADER);
        let claims = serde_json::json!({ "email": email.as_str(), "exp": expires.unix_seconds() });
        let claims = BASE64URL.encode(claims.to_string());
        let signature = self.mac(&header, &claims).finalize().into_bytes();
        format!("{header}.{claims}.{}", BASE64URL.encode(signature))
    }

    /// Whether `token` vouches for `email` at `now`, or why not (see the module's invariants for the order).
    pub fn verify(
        &self,
        email: &Email,
        token: &IdentityToken,
        now: Timestamp,
    ) -> Result<(), IdentityRefusal> {
        let mut parts = token.0.expose_secret().split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdentityRefusal::Malformed(Malformed::NotAJwt));
        };
        // The signature first, compared in constant time (`verify_slice`): until it verifies, nothing in the token
        // is believed. A signature that is not even base64url is as wrong as any other.
        let signature = BASE64URL
            .decode(signature)
            .map_err(|_| IdentityRefusal::WrongToken)?;
        self.mac(header, claims)
            .verify_slice(&signature)
            .map_err(|_| IdentityRefusal::WrongToken)?;
        // Signed with our secret, so what follows is the site's own mistake, said plainly.
        let header = decode_json(header).ok_or(IdentityRefusal::Malformed(Malformed::NotAJwt))?;
        if header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(IdentityRefusal::Malformed(Malformed::Algorithm));
        }
        let claims = decode_json(claims).ok_or(IdentityRefusal::Malformed(Malformed::NotAJwt))?;
        let claimed = claims
            .get("email")
            .and_then(Value::as_str)
            .ok_or(IdentityRefusal::Malformed(Malformed::NoEmail))?;
        if Email::parse(claimed).ok().as_ref() != Some(email) {
            // Signed for someone else: as good as a wrong token for this e-mail.
            return Err(IdentityRefusal::WrongToken);
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(IdentityRefusal::Malformed(Malformed::NoExpiry))?;
        let now = now.unix_seconds();
        // RFC 7519: not accepted on or after `exp`; the skew gives the site's clock a little room.
        if now >= exp.saturating_add(seconds(CLOCK_SKEW)) {
            return Err(IdentityRefusal::Expired);
        }
        if exp > now.saturating_add(seconds(MAX_LIFETIME)) {
            return Err(IdentityRefusal::Malformed(Malformed::TooLong));
        }
        Ok(())
    }
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// A JWT part: base64url of a JSON object.
fn decode_json(part: &str) -> Option<serde_json::Map<String, Value>> {
    let bytes = BASE64URL.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

/// What is wrong with a token that is not in the documented format (400 `invalid_identity_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not `header.claims.signature` of base64url JSON: also every token of the first format (a bare hex HMAC).
    NotAJwt,
    /// Signed, but its header does not say `"alg":"HS256"`.
    Algorithm,
    /// Signed, but without an `email` claim.
    NoEmail,
    /// Signed, but without an integer `exp`.
    NoExpiry,
    /// Signed, but expiring more than [`MAX_LIFETIME`] from now.
    TooLong,
}

impl Malformed {
    /// The sentence the API answers with: says what the site's backend must change.
    pub fn explain(self) -> &'static str {
        match self {
            Malformed::NotAJwt => {
                "the identityToken is not a JWT (header.claims.signature): identity tokens are HS256 JWTs with email \
                 and exp claims; a bare HMAC of the e-mail, which never expires, is no longer accepted"
            }
            Malformed::Algorithm => "the identityToken must be signed with HS256 (\"alg\":\"HS256\")",
            Malformed::NoEmail => "the identityToken has no email claim",
            Malformed::NoExpiry => {
                "the identityToken has no exp claim (whole seconds since 1970): identity tokens must expire"
            }
            Malformed::TooLong => {
                "the identityToken expires more than 24 hours from now: sign tokens for at most a day (exp is in \
                 seconds since 1970, not milliseconds)"
            }
        }
    }
}

/// Why a registration's identity is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityRefusal {
    /// A token not signed with `IDENTITY_SECRET` for this e-mail (forged, altered, another e-mail's).
    WrongToken,
    /// A genuine token for this e-mail whose `exp` has passed.
    Expired,
    /// Not a token in the documented format, or one that breaks its rules (no expiry, too long a life).
    Malformed(Malformed),
    /// `REQUIRE_IDENTITY` is on and the registration carries no token.
    Required,
}

/// What the site asks of registrations: `IDENTITY_SECRET` (verification possible) and `REQUIRE_IDENTITY`.
#[derive(Clone, Default)]
pub struct IdentityPolicy {
    verifier: Option<IdentityVerifier>,
    required: bool,
}

impl IdentityPolicy {
    /// `required` needs a verifier: the caller (configuration) refuses one without the other.
    pub fn new(verifier: Option<IdentityVerifier>, required: bool) -> Self {
        Self { verifier, required }
    }

    pub fn requires_verification(&self) -> bool {
        self.required
    }

    /// How the registration of `email` with `token` at `now` is identified, or why it is refused.
    pub fn identify(
        &self,
        email: &Email,
        token: Option<&IdentityToken>,
        now: Timestamp,
    ) -> Result<Identity, IdentityRefusal> {
        match (&self.verifier, token) {
            (Some(verifier), Some(token)) => verifier
                .verify(email, token, now)
                .map(|()| Identity::Verified),
            (_, None) if self.required => Err(IdentityRefusal::Required),
            // A token a site without IDENTITY_SECRET sends proves nothing here: the e-mail stays unverified.
            (None, Some(_)) | (_, None) => Ok(Identity::Unverified),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(raw: &str) -> Email {
        Email::parse(raw).expect("valid")
    }

    fn verifier() -> IdentityVerifier {
        IdentityVerifier::new(SecretString::from("site-secret"))
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(seconds).expect("in range")
    }

    /// 2026-01-01T00:00:00Z.
    const EXP: i64 = 1_767_225_600;

    #[test]
    fn token_is_an_hs256_jwt_of_the_lowercased_email_and_its_expiry() {
        // Independently computed (Python's hmac and base64, and docs/security.md's openssl command):
        // header {"alg":"HS256","typ":"JWT"}, claims {"email":"ada@example.com","exp":1767225600}, key site-secret.
        let expected = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                        eyJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSIsImV4cCI6MTc2NzIyNTYwMH0.\
                        jOjHuwgdGDOsCkmtH6z_AdQY0MJ9E6RgwnJsQLlaDGc";
        assert_eq!(
            verifier().token_for(&email("Ada@Example.com"), at(EXP)),
            expected
        );
    }

    #[test]
    fn a_token_verifies_until_its_expiry_and_not_after() {
        let v = verifier();
        let ada = email("ada@example.com");
        let token = IdentityToken::new(&v.token_for(&ada, at(EXP)));
        assert_eq!(v.verify(&ada, &token, at(EXP - 3_600)), Ok(()));
        // Within the allowance for the site's clock, then expired.
        let skew = seconds(CLOCK_SKEW);
        assert_eq!(v.verify(&ada, &token, at(EXP + skew - 1)), Ok(()));
        assert_eq!(
            v.verify(&ada, &token, at(EXP + skew)),
            Err(IdentityRefusal::Expired)
        );
        // Expiring more than a day ahead is refused: tokens must be short-lived.
        let day = seconds(MAX_LIFETIME);
        assert_eq!(v.verify(&ada, &token, at(EXP - day)), Ok(()));
        assert_eq!(
            v.verify(&ada, &token, at(EXP - day - 1)),
            Err(IdentityRefusal::Malformed(Malformed::TooLong))
        );
    }

    #[test]
    fn only_a_token_signed_for_this_email_verifies() {
        let v = verifier();
        let ada = email("ada@example.com");
        let now = at(EXP - 60);
        let token = v.token_for(&ada, at(EXP));
        assert_eq!(v.verify(&ada, &IdentityToken::new(&token), now), Ok(()));
        let wrong = |raw: &str| v.verify(&ada, &IdentityToken::new(raw), now);
        // Another e-mail's token, another secret's, a cut or altered signature.
        assert_eq!(
            v.verify(
                &email("grace@example.com"),
                &IdentityToken::new(&token),
                now
            ),
            Err(IdentityRefusal::WrongToken)
        );
        let other = IdentityVerifier::new(SecretString::from("another-secret"));
        assert_eq!(
            wrong(&other.token_for(&ada, at(EXP))),
            Err(IdentityRefusal::WrongToken)
        );
        assert_eq!(
            wrong(&token[..token.len() - 1]),
            Err(IdentityRefusal::WrongToken)
        );
        let (unsigned, _) = token.rsplit_once('.').expect("three parts");
        assert_eq!(
            wrong(&format!("{unsigned}.")),
            Err(IdentityRefusal::WrongToken)
        );
        assert_eq!(
            wrong(&format!("{unsigned}.{}", "A".repeat(43))),
            Err(IdentityRefusal::WrongToken)
        );
    }

    #[test]
    fn a_changed_expiry_breaks_the_signature() {
        let v = verifier();
        let ada = email("ada@example.com");
        let token = v.token_for(&ada, at(EXP));
        let mut parts: Vec<&str> = token.split('.').collect();
        let later = BASE64URL.encode(r#"{"email":"ada@example.com","exp":1767229200}"#);
        parts[1] = &later;
        assert_eq!(
            v.verify(&ada, &IdentityToken::new(&parts.join(".")), at(EXP + 600)),
            Err(IdentityRefusal::WrongToken)
        );
    }

    /// A token signed with the secret but breaking the format's rules, the way a site's backend might make it.
    fn signed(v: &IdentityVerifier, header: &str, claims: &str) -> IdentityToken {
        let (header, claims) = (BASE64URL.encode(header), BASE64URL.encode(claims));
        let signature = BASE64URL.encode(v.mac(&header, &claims).finalize().into_bytes());
        IdentityToken::new(&format!("{header}.{claims}.{signature}"))
    }

    #[test]
    fn a_signed_token_without_expiry_or_email_or_hs256_is_malformed() {
        let v = verifier();
        let ada = email("ada@example.com");
        let now = at(EXP - 60);
        let cases = [
            (
                HEADER,
                r#"{"email":"ada@example.com"}"#,
                Malformed::NoExpiry,
            ),
            (
                HEADER,
                r#"{"email":"ada@example.com","exp":"1767225600"}"#,
                Malformed::NoExpiry,
            ),
            (
                HEADER,
                r#"{"email":"ada@example.com","exp":1767225600.5}"#,
                Malformed::NoExpiry,
            ),
            (HEADER, r#"{"exp":1767225600}"#, Malformed::NoEmail),
            (
                r#"{"alg":"HS512"}"#,
                r#"{"email":"ada@example.com","exp":1767225600}"#,
                Malformed::Algorithm,
            ),
            (HEADER, "[1]", Malformed::NotAJwt),
        ];
        for (header, claims, why) in cases {
            assert_eq!(
                v.verify(&ada, &signed(&v, header, claims), now),
                Err(IdentityRefusal::Malformed(why)),
                "{header} {claims}"
            );
        }
        // `typ` is optional, the e-mail's case does not matter, and padding some libraries write is fine.
        let without_typ = signed(
            &v,
            r#"{"alg":"HS256"}"#,
            r#"{"email":"Ada@Example.com","exp":1767225600}"#,
        );
        assert_eq!(v.verify(&ada, &without_typ, now), Ok(()));
        let padded = format!("{}=", v.token_for(&ada, at(EXP)));
        assert_eq!(v.verify(&ada, &IdentityToken::new(&padded), now), Ok(()));
    }

    #[test]
    fn the_first_format_and_other_shapes_are_not_jwts() {
        let v = verifier();
        let ada = email("ada@example.com");
        // The first format: hex(HMAC-SHA256(secret, e-mail)), no expiry (openssl dgst -sha256 -hmac site-secret).
        let legacy = "3b908862fa6d29f5c9cbfee5c7c69b64943323c2922dfbbc4673bc5b3c101344";
        for raw in [legacy, "", "a.b", "a.b.c.d"] {
            assert_eq!(
                v.verify(&ada, &IdentityToken::new(raw), at(EXP)),
                Err(IdentityRefusal::Malformed(Malformed::NotAJwt)),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn policy_decides_verified_unverified_or_refused() {
        let ada = email("ada@example.com");
        let now = at(EXP - 60);
        let good = IdentityToken::new(&verifier().token_for(&ada, at(EXP)));
        let bad = IdentityToken::new(&verifier().token_for(&email("grace@example.com"), at(EXP)));
        let optional = IdentityPolicy::new(Some(verifier()), false);
        assert_eq!(
            optional.identify(&ada, Some(&good), now),
            Ok(Identity::Verified)
        );
        assert_eq!(optional.identify(&ada, None, now), Ok(Identity::Unverified));
        assert_eq!(
            optional.identify(&ada, Some(&bad), now),
            Err(IdentityRefusal::WrongToken)
        );
        assert_eq!(
            optional.identify(&ada, Some(&good), at(EXP + 3_600)),
            Err(IdentityRefusal::Expired)
        );
        let required = IdentityPolicy::new(Some(verifier()), true);
        assert_eq!(
            required.identify(&ada, None, now),
            Err(IdentityRefusal::Required)
        );
        assert_eq!(
            required.identify(&ada, Some(&good), now),
            Ok(Identity::Verified)
        );
        let off = IdentityPolicy::default();
        assert_eq!(
            off.identify(&ada, Some(&good), now),
            Ok(Identity::Unverified)
        );
    }

    #[test]
    fn stored_form_round_trips_and_old_items_read_unverified() {
        for identity in [Identity::Unverified, Identity::Verified] {
            assert_eq!(Identity::parse(Some(identity.as_str())), Some(identity));
        }
        assert_eq!(Identity::parse(None), Some(Identity::Unverified));
        assert_eq!(Identity::parse(Some("maybe")), None);
    }
}
