//! How a visitor was identified, and the optional identity verification for sites whose visitors are signed in.
//!
//! The registration form is public: anyone can type anyone's e-mail. So an e-mail as typed only *links* a
//! conversation to the contact that has it (never changing that contact), and the conversation's header says the
//! e-mail was not verified. A site whose visitors are signed in can vouch for the e-mail instead: its backend computes
//! `identityToken = hex(HMAC-SHA256(IDENTITY_SECRET, lowercased e-mail))` — the pattern of Intercom's identity
//! verification and HubSpot's visitor identification — and the widget sends it along. A matching token marks the
//! registration verified (and lets it update the contact's names); a token that does not match is refused.

use super::Email;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// How the visitor's e-mail is known to be theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Typed into the form: anyone could have typed it.
    Unverified,
    /// Vouched for by the site (a matching `identityToken`).
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

    fn mac(&self, email: &Email) -> Hmac<Sha256> {
        // HMAC takes keys of any length, so this cannot fail; the fallback key keeps the type total.
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        // `Email` is lowercased already: the token is over the lowercased e-mail, whatever the visitor typed.
        mac.update(email.as_str().as_bytes());
        mac
    }

    /// The token a site's backend computes for `email` (hex, lowercase).
    pub fn token_for(&self, email: &Email) -> String {
        hex::encode(self.mac(email).finalize().into_bytes())
    }

    /// Whether `token` is the one for `email`; constant-time in the token's bytes (`verify_slice`).
    pub fn verify(&self, email: &Email, token: &IdentityToken) -> bool {
        let Ok(given) = hex::decode(token.0.expose_secret()) else {
            return false;
        };
        self.mac(email).verify_slice(&given).is_ok()
    }
}

/// Why a registration's identity is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityRefusal {
    /// A token that does not match the e-mail.
    WrongToken,
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

    /// How the registration of `email` with `token` is identified, or why it is refused.
    pub fn identify(
        &self,
        email: &Email,
        token: Option<&IdentityToken>,
    ) -> Result<Identity, IdentityRefusal> {
        match (&self.verifier, token) {
            (Some(verifier), Some(token)) if verifier.verify(email, token) => {
                Ok(Identity::Verified)
            }
            (Some(_), Some(_)) => Err(IdentityRefusal::WrongToken),
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

    #[test]
    fn token_is_hex_hmac_sha256_of_the_lowercased_email() {
        // Independently computed: printf '%s' 'ada@example.com' | openssl dgst -sha256 -hmac 'site-secret'
        let expected = "3b908862fa6d29f5c9cbfee5c7c69b64943323c2922dfbbc4673bc5b3c101344";
        assert_eq!(verifier().token_for(&email("Ada@Example.com")), expected);
    }

    #[test]
    fn matching_token_verifies_whatever_its_case_and_others_do_not() {
        let v = verifier();
        let ada = email("ada@example.com");
        let token = v.token_for(&ada);
        assert!(v.verify(&ada, &IdentityToken::new(&token)));
        assert!(v.verify(&ada, &IdentityToken::new(&token.to_uppercase())));
        assert!(!v.verify(&email("grace@example.com"), &IdentityToken::new(&token)));
        assert!(!v.verify(&ada, &IdentityToken::new(&token[..62])));
        assert!(!v.verify(&ada, &IdentityToken::new("not hex")));
        assert!(!v.verify(&ada, &IdentityToken::new("")));
        let other = IdentityVerifier::new(SecretString::from("another-secret"));
        assert!(!other.verify(&ada, &IdentityToken::new(&token)));
    }

    #[test]
    fn policy_decides_verified_unverified_or_refused() {
        let ada = email("ada@example.com");
        let good = IdentityToken::new(&verifier().token_for(&ada));
        let bad = IdentityToken::new(&"0".repeat(64));
        let optional = IdentityPolicy::new(Some(verifier()), false);
        assert_eq!(optional.identify(&ada, Some(&good)), Ok(Identity::Verified));
        assert_eq!(optional.identify(&ada, None), Ok(Identity::Unverified));
        assert_eq!(
            optional.identify(&ada, Some(&bad)),
            Err(IdentityRefusal::WrongToken)
        );
        let required = IdentityPolicy::new(Some(verifier()), true);
        assert_eq!(
            required.identify(&ada, None),
            Err(IdentityRefusal::Required)
        );
        assert_eq!(required.identify(&ada, Some(&good)), Ok(Identity::Verified));
        let off = IdentityPolicy::default();
        assert_eq!(off.identify(&ada, Some(&good)), Ok(Identity::Unverified));
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
