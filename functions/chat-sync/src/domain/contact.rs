use super::Invalid;
use std::fmt;

/// A syntactically valid e-mail address, trimmed and lowercased (HubSpot matches e-mails case-insensitively,
/// so the lowercase form is the one key we use everywhere).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    const FIELD: &'static str = "email";

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let value = raw.trim().to_lowercase();
        let fail = |reason: &str| Err(Invalid::new(Self::FIELD, reason));
        if value.is_empty() {
            return fail("is required");
        }
        if value.len() > 254 {
            return fail("must be at most 254 characters");
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return fail("must look like name@example.com");
        };
        if local.is_empty() || local.len() > 64 {
            return fail("must have 1-64 characters before the @");
        }
        let local_ok = local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !local_ok {
            return fail("has characters that are not allowed before the @");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if !domain_ok {
            return fail("must have a valid domain such as example.com");
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A first or last name: trimmed, 1-100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Invalid> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(Invalid::new(field, "is required"));
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new(
                field,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(Invalid::new(field, "must not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        let email = Email::parse("  Ada.Lovelace+chat@Example.COM ").expect("valid");
        assert_eq!(email.as_str(), "ada.lovelace+chat@example.com");
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for raw in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada lovelace@example.com",
            "ada@exa mple.com",
            ".ada@example.com",
            "ada..l@example.com",
            "ada@-example.com",
            "ada@example.c0m",
            "ada@example..com",
            "ada\n@example.com",
        ] {
            let err = Email::parse(raw).expect_err(raw);
            assert_eq!(err.field, "email", "{raw}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long_local).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            PersonName::parse("firstName", "  Ada ")
                .expect("valid")
                .as_str(),
            "Ada"
        );
        assert_eq!(
            PersonName::parse("firstName", "Zoë 😀")
                .expect("unicode is fine")
                .as_str(),
            "Zoë 😀"
        );
        assert!(PersonName::parse("firstName", &"é".repeat(100)).is_ok());
        let err = PersonName::parse("lastName", &"é".repeat(101)).expect_err("too long");
        assert_eq!(err.field, "lastName");
        assert!(PersonName::parse("firstName", "  ").is_err());
        assert!(PersonName::parse("firstName", "Ada\u{7}").is_err());
        assert!(PersonName::parse("firstName", "Ada\nLovelace").is_err());
    }
}
