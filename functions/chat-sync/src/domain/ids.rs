use super::Invalid;
use std::fmt;

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// 128 random bits as hex: ids that nobody can guess from a name, an e-mail or another id.
fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A HubSpot contact id (the numeric record id HubSpot returns).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactId(String);
string_newtype!(ContactId);

impl ContactId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > 32 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new(
                "contactId",
                "must be a HubSpot numeric record id",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// A Stream user id: `[a-z0-9@_-]`, at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);
string_newtype!(UserId);

impl UserId {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Invalid> {
        let ok = !raw.is_empty()
            && raw.len() <= 255
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"@_-".contains(&b));
        if !ok {
            return Err(Invalid::new(
                field,
                "must be 1-255 characters of a-z, 0-9, @, _ or -",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A fresh visitor identity for one registration.
    pub fn new_visitor() -> Self {
        Self(format!("visitor-{}", random_suffix()))
    }
}

/// A Stream channel type such as `messaging`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelType(String);
string_newtype!(ChannelType);

impl ChannelType {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(Invalid::new(
                "channelType",
                "must be 1-64 characters of a-z, 0-9, _ or -",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// A Stream channel id: `[A-Za-z0-9_-]`, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelId(String);
string_newtype!(ChannelId);

impl ChannelId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(Invalid::new(
                "channelId",
                "must be 1-64 characters of A-Z, a-z, 0-9, _ or -",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A fresh private channel for one registration.
    pub fn new_random() -> Self {
        Self(format!("chat-{}", random_suffix()))
    }
}

/// A channel's full identity, Stream's `cid` (`type:id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelRef {
    pub channel_type: ChannelType,
    pub channel_id: ChannelId,
}

impl ChannelRef {
    pub fn new(channel_type: ChannelType, channel_id: ChannelId) -> Self {
        Self {
            channel_type,
            channel_id,
        }
    }

    /// Parses a `type:id` cid.
    pub fn parse_cid(cid: &str) -> Result<Self, Invalid> {
        let (channel_type, channel_id) = cid
            .split_once(':')
            .ok_or_else(|| Invalid::new("cid", "must be of the form type:id"))?;
        Ok(Self::new(
            ChannelType::parse(channel_type)?,
            ChannelId::parse(channel_id)?,
        ))
    }

    pub fn cid(&self) -> String {
        format!("{}:{}", self.channel_type, self.channel_id)
    }
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.channel_type, self.channel_id)
    }
}

/// A Stream message id: 1-255 visible characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(String);
string_newtype!(MessageId);

impl MessageId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let ok = !raw.is_empty()
            && raw.len() <= 255
            && !raw.chars().any(|c| c.is_control() || c.is_whitespace());
        if !ok {
            return Err(Invalid::new(
                "message.id",
                "must be 1-255 visible characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// A HubSpot note (engagement) id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NoteId(String);
string_newtype!(NoteId);

impl NoteId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > 32 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new(
                "noteId",
                "must be a HubSpot numeric record id",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_random_and_distinct() {
        let a = UserId::new_visitor();
        let b = UserId::new_visitor();
        assert_ne!(a, b);
        assert!(UserId::parse("id", a.as_str()).is_ok());
        assert_eq!(a.as_str().len(), "visitor-".len() + 32);
        let c = ChannelId::new_random();
        assert!(ChannelId::parse(c.as_str()).is_ok());
        assert_ne!(c, ChannelId::new_random());
    }

    #[test]
    fn ids_reject_invalid_characters() {
        assert!(ContactId::parse("12345").is_ok());
        assert!(ContactId::parse("12a").is_err());
        assert!(ContactId::parse("").is_err());
        assert!(UserId::parse("id", "Ada").is_err());
        assert!(UserId::parse("id", "ada@x_y-1").is_ok());
        assert!(ChannelId::parse("abc:def").is_err());
        assert!(ChannelId::parse(&"a".repeat(65)).is_err());
        assert!(ChannelType::parse("Messaging").is_err());
        assert!(MessageId::parse("m 1").is_err());
    }

    #[test]
    fn cid_round_trips() {
        let channel = ChannelRef::parse_cid("messaging:chat-1").expect("valid");
        assert_eq!(channel.cid(), "messaging:chat-1");
        assert!(ChannelRef::parse_cid("messaging").is_err());
        assert!(ChannelRef::parse_cid("messaging:a:b").is_err());
    }
}
