//! What a token carries for the services that verify it, beyond its permissions: the
//! caller's own id for the customer it belongs to, and a JSON object handed back on
//! verification (never used for a decision).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::names::is_format;

/// The customer a token belongs to in the caller's own system: 1 to 128 printable
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let count = raw.chars().count();
        if count == 0 || count > Self::MAX_CHARS {
            return Err(format!(
                "an external id is 1 to {} characters; this one has {count}.",
                Self::MAX_CHARS
            ));
        }
        if raw.chars().any(|c| c.is_control() || is_format(c)) {
            return Err(
                "an external id is printable characters only: no control or invisible formatting characters."
                    .into(),
            );
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A JSON object of at most 4 KiB serialised, kept parsed and shared, so a verification
/// writes it out without copying it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMeta(Arc<Value>);

impl KeyMeta {
    pub const MAX_BYTES: usize = 4096;

    pub fn new(value: Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err("meta must be a JSON object, such as {\"plan\": \"pro\"}.".into());
        };
        Self::of_object(map)
    }

    fn of_object(map: Map<String, Value>) -> Result<Self, String> {
        let value = Value::Object(map);
        let size = serde_json::to_vec(&value).map_or(usize::MAX, |v| v.len());
        if size > Self::MAX_BYTES {
            return Err(format!(
                "meta is at most {} bytes serialised; this object is {size}.",
                Self::MAX_BYTES
            ));
        }
        Ok(Self(Arc::new(value)))
    }

    /// The stored form: the object serialised.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(raw).map_err(|e| format!("meta is not valid JSON: {e}."))?;
        Self::new(value)
    }

    pub fn value(&self) -> &Value {
        &self.0
    }

    pub fn to_stored(&self) -> String {
        self.0.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_external_id_is_short_printable_text() {
        assert!(ExternalId::parse("cus_123 ünïcode").is_ok());
        assert!(ExternalId::parse(&"x".repeat(128)).is_ok());
        for bad in ["", "a\nb", "a\u{200b}b", &"x".repeat(129)] {
            assert!(ExternalId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn meta_is_a_small_object() {
        assert!(KeyMeta::new(json!({"plan": "pro", "n": [1, 2]})).is_ok());
        for bad in [json!([1]), json!("x"), json!(null), json!(3)] {
            assert!(KeyMeta::new(bad).unwrap_err().contains("object"));
        }
        let big = json!({ "x": "y".repeat(4100) });
        assert!(KeyMeta::new(big).unwrap_err().contains("4096"));
        let stored = KeyMeta::new(json!({"a": 1})).unwrap().to_stored();
        assert_eq!(KeyMeta::parse(&stored).unwrap().value(), &json!({"a": 1}));
    }
}

/// Everything a token carries for its verifiers, as set at creation or by a change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyFields {
    pub permissions: super::Permissions,
    pub meta: Option<KeyMeta>,
    pub external_id: Option<ExternalId>,
    pub credits: Option<super::Credits>,
    pub allowed_ips: super::IpAllowlist,
}

impl KeyFields {
    /// One line for the audit log: what is set, never the meta's content.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.permissions.is_empty() {
            parts.push(format!("permissions {}", self.permissions));
        }
        if let Some(id) = &self.external_id {
            parts.push(format!("external id {}", id.as_str()));
        }
        if self.meta.is_some() {
            parts.push("meta set".to_string());
        }
        if let Some(credits) = &self.credits {
            parts.push(describe_credits(credits));
        }
        if !self.allowed_ips.is_empty() {
            parts.push(format!("allowed from {}", self.allowed_ips.as_str()));
        }
        parts.join("; ")
    }
}

/// `100 credits, refilled to 50 daily`, for the audit log and the dashboard.
pub fn describe_credits(credits: &super::Credits) -> String {
    match credits.refill {
        Some(refill) => format!(
            "{} credits, refilled to {} {}",
            credits.remaining(),
            refill.amount(),
            refill.interval.as_str()
        ),
        None => format!("{} credits", credits.remaining()),
    }
}

/// A change to some of a token's [`KeyFields`]: `None` leaves a field as it is;
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyFieldsChange {
    pub permissions: Option<super::Permissions>,
    pub meta: Option<Option<KeyMeta>>,
    pub external_id: Option<Option<ExternalId>>,
    pub credits: Option<Option<super::Credits>>,
    pub allowed_ips: Option<super::IpAllowlist>,
}

impl KeyFieldsChange {
    pub fn applied_to(&self, fields: &KeyFields) -> KeyFields {
        KeyFields {
            permissions: self
                .permissions
                .clone()
                .unwrap_or_else(|| fields.permissions.clone()),
            meta: self.meta.clone().unwrap_or_else(|| fields.meta.clone()),
            external_id: self
                .external_id
                .clone()
                .unwrap_or_else(|| fields.external_id.clone()),
            credits: self.credits.unwrap_or(fields.credits),
            allowed_ips: self
                .allowed_ips
                .clone()
                .unwrap_or_else(|| fields.allowed_ips.clone()),
        }
    }
}

/// The fields as typed into a form or onto the command line: every one text, empty for
/// none.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct KeyFieldsText {
    /// Names separated by commas or spaces.
    pub permissions: String,
    /// A JSON object.
    pub meta: String,
    pub external_id: String,
    /// A whole number; empty for no credit limit.
    pub credits: String,
    /// Empty, `daily` or `monthly`.
    pub refill_interval: String,
    pub refill_amount: String,
    /// CIDRs separated by commas or spaces.
    pub allowed_ips: String,
}

impl KeyFieldsText {
    /// The fields, or every problem, each naming its field.
    pub fn parse(&self) -> Result<KeyFields, Vec<String>> {
        let mut errors = Vec::new();
        let mut named = |name: &str, e: String| errors.push(format!("{name}: {e}"));
        let permissions = super::Permissions::parse(&self.permissions)
            .map_err(|e| named("Permissions", e))
            .unwrap_or_default();
        let meta = match self.meta.trim() {
            "" => None,
            raw => KeyMeta::parse(raw).map_err(|e| named("Meta", e)).ok(),
        };
        let external_id = match self.external_id.trim() {
            "" => None,
            raw => ExternalId::parse(raw)
                .map_err(|e| named("External id", e))
                .ok(),
        };
        let whole = |raw: &str| {
            raw.trim().parse::<i64>().map_err(|_| {
                format!(
                    "a whole number from 0 to {} is needed; \"{}\" is not one.",
                    super::MAX_CREDITS,
                    raw.trim().chars().take(30).collect::<String>()
                )
            })
        };
        let refill = match self.refill_interval.trim() {
            "" | "none" => None,
            raw => super::RefillInterval::parse(raw)
                .and_then(|interval| {
                    whole(&self.refill_amount).and_then(|n| super::Refill::new(interval, n))
                })
                .map_err(|e| named("Refill", e))
                .ok(),
        };
        let credits = match self.credits.trim() {
            "" => None,
            raw => whole(raw)
                .and_then(|n| super::Credits::new(n, refill))
                .map_err(|e| named("Credits", e))
                .ok(),
        };
        if credits.is_none() && refill.is_some() && self.credits.trim().is_empty() {
            named(
                "Refill",
                "a refill needs a credit limit: set the credits too.".into(),
            );
        }
        let allowed_ips = super::IpAllowlist::parse(&self.allowed_ips)
            .map_err(|e| named("Allowed IPs", e))
            .unwrap_or_default();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(KeyFields {
            permissions,
            meta,
            external_id,
            credits,
            allowed_ips,
        })
    }

    /// A token's fields as a form shows them.
    pub fn of(fields: &KeyFields) -> Self {
        let refill = fields.credits.and_then(|c| c.refill);
        KeyFieldsText {
            permissions: fields.permissions.iter().collect::<Vec<_>>().join(", "),
            meta: fields
                .meta
                .as_ref()
                .and_then(|m| serde_json::to_string_pretty(m.value()).ok())
                .unwrap_or_default(),
            external_id: fields
                .external_id
                .as_ref()
                .map(|e| e.as_str().to_string())
                .unwrap_or_default(),
            credits: fields
                .credits
                .map(|c| c.remaining().to_string())
                .unwrap_or_default(),
            refill_interval: refill
                .map(|r| r.interval.as_str().to_string())
                .unwrap_or_default(),
            refill_amount: refill.map(|r| r.amount().to_string()).unwrap_or_default(),
            allowed_ips: fields.allowed_ips.names().join(", "),
        }
    }
}
