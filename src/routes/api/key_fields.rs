//! The JSON of what a token carries for its verifiers, read for `POST /access-tokens` and
//! `PATCH /access-tokens/{key}`: each field's problem is a sentence naming the field and
//! its rule, and every problem is told at once.

use serde_json::Value;

use crate::domain::{
    Credits, ExternalId, IpAllowlist, KeyFields, KeyFieldsChange, KeyMeta, Permission, Permissions,
    Refill, RefillInterval,
};

/// The fields as sent; each is read as any JSON value, so a wrong type gets a sentence.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Sent {
    #[serde(default, deserialize_with = "present")]
    pub permissions: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub meta: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub external_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub credits: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub allowed_ips: Option<Value>,
}

/// A field that is there, `null` included: absent stays `None`, `null` is `Some(Null)`.
pub fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

impl Sent {
    /// The change these fields ask for: absent leaves a field alone, `null` clears it.
    pub fn change(self, errors: &mut Vec<String>) -> KeyFieldsChange {
        let mut change = KeyFieldsChange::default();
        let mut field = |name: &str, r: Result<(), String>| {
            if let Err(e) = r {
                errors.push(format!("'{name}': {e}"));
            }
        };
        if let Some(v) = self.permissions {
            field(
                "permissions",
                permissions(v).map(|p| change.permissions = Some(p)),
            );
        }
        if let Some(v) = self.meta {
            field("meta", meta(v).map(|m| change.meta = Some(m)));
        }
        if let Some(v) = self.external_id {
            field(
                "external_id",
                external_id(v).map(|e| change.external_id = Some(e)),
            );
        }
        if let Some(v) = self.credits {
            field("credits", credits(v).map(|c| change.credits = Some(c)));
        }
        if let Some(v) = self.allowed_ips {
            field(
                "allowed_ips",
                allowed_ips(v).map(|a| change.allowed_ips = Some(a)),
            );
        }
        change
    }

    /// The fields of a new token: what is absent is empty.
    pub fn fields(self, errors: &mut Vec<String>) -> KeyFields {
        self.change(errors).applied_to(&KeyFields::default())
    }
}

fn strings(v: Value, what: &str) -> Result<Vec<String>, String> {
    let Value::Array(items) = v else {
        return Err(format!("must be a list of {what}."));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            _ => Err(format!("each item must be a string: {what}.")),
        })
        .collect()
}

fn permissions(v: Value) -> Result<Permissions, String> {
    if v.is_null() {
        return Ok(Permissions::default());
    }
    let names = strings(v, "permission names such as \"documents.read\"")?;
    names
        .iter()
        .map(|n| Permission::parse(n))
        .collect::<Result<Vec<_>, _>>()
        .and_then(Permissions::new)
}

fn meta(v: Value) -> Result<Option<KeyMeta>, String> {
    match v {
        Value::Null => Ok(None),
        v => KeyMeta::new(v).map(Some),
    }
}

fn external_id(v: Value) -> Result<Option<ExternalId>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => ExternalId::parse(&s).map(Some),
        _ => Err("must be a string of 1 to 128 printable characters, or null.".into()),
    }
}

const CREDITS_SHAPE: &str = "must be an object such as {\"remaining\": 1000, \"refill\": {\"interval\": \"monthly\", \"amount\": 1000}}, or null for no limit";

fn whole(v: Option<&Value>, what: &str) -> Result<i64, String> {
    v.and_then(Value::as_i64).ok_or_else(|| {
        format!(
            "{what} is a whole number from 0 to {}.",
            crate::domain::MAX_CREDITS
        )
    })
}

fn credits(v: Value) -> Result<Option<Credits>, String> {
    let map = match v {
        Value::Null => return Ok(None),
        Value::Object(map) => map,
        _ => return Err(format!("{CREDITS_SHAPE}.")),
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "remaining" | "refill"))
    {
        return Err(format!("unknown field '{unknown}': it {CREDITS_SHAPE}."));
    }
    let remaining = whole(map.get("remaining"), "'remaining'")?;
    let refill = match map.get("refill") {
        None | Some(Value::Null) => None,
        Some(Value::Object(refill)) => {
            if let Some(unknown) = refill
                .keys()
                .find(|k| !matches!(k.as_str(), "interval" | "amount"))
            {
                return Err(format!(
                    "'refill' has an unknown field '{unknown}': it takes 'interval' and 'amount'."
                ));
            }
            let interval = match refill.get("interval") {
                Some(Value::String(s)) => RefillInterval::parse(s)?,
                _ => return Err(format!("{}.", RefillInterval::CHOICES)),
            };
            let amount = whole(refill.get("amount"), "a refill's 'amount'")?;
            Some(Refill::new(interval, amount)?)
        }
        Some(_) => {
            return Err("'refill' must be an object with 'interval' and 'amount', or null.".into());
        }
    };
    Credits::new(remaining, refill).map(Some)
}

fn allowed_ips(v: Value) -> Result<IpAllowlist, String> {
    if v.is_null() {
        return Ok(IpAllowlist::default());
    }
    IpAllowlist::new(strings(v, "CIDRs such as \"203.0.113.0/24\"")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors_of(body: Value) -> Vec<String> {
        let sent: Sent = serde_json::from_value(body).unwrap();
        let mut errors = Vec::new();
        sent.change(&mut errors);
        errors
    }

    #[test]
    fn every_bad_field_names_itself_and_its_rule() {
        let cases = [
            (
                json!({"permissions": ["Bad"]}),
                "'permissions': \"Bad\" is not a permission",
            ),
            (json!({"permissions": "a"}), "'permissions': must be a list"),
            (json!({"meta": [1]}), "'meta': meta must be a JSON object"),
            (
                json!({"meta": {"x": "y".repeat(5000)}}),
                "'meta': meta is at most 4096 bytes",
            ),
            (
                json!({"external_id": ""}),
                "'external_id': an external id is 1 to 128",
            ),
            (json!({"external_id": 5}), "'external_id': must be a string"),
            (
                json!({"credits": {"remaining": -1}}),
                "'credits': 'remaining' is a whole number",
            ),
            (
                json!({"credits": {"remaining": 1e13}}),
                "'credits': 'remaining' is a whole number",
            ),
            (
                json!({"credits": {"remaining": 10_000_000_000_000_i64}}),
                "'credits': 'remaining' is a whole number from 0",
            ),
            (
                json!({"credits": {"remaining": 5, "refill": {"interval": "weekly", "amount": 5}}}),
                "'credits': \"weekly\" is not a refill interval",
            ),
            (
                json!({"credits": {"remaining": 5, "extra": 1}}),
                "'credits': unknown field 'extra'",
            ),
            (json!({"credits": 5}), "'credits': must be an object"),
            (
                json!({"allowed_ips": ["10.0.0.0/33"]}),
                "'allowed_ips': \"10.0.0.0/33\" is not a CIDR",
            ),
        ];
        for (body, expected) in cases {
            let errors = errors_of(body.clone());
            assert!(
                errors.iter().any(|e| e.starts_with(expected)),
                "{body}: {errors:?} should start with {expected}"
            );
        }
    }

    #[test]
    fn null_clears_and_absent_leaves_alone() {
        let sent: Sent = serde_json::from_value(json!({"meta": null, "credits": null})).unwrap();
        let mut errors = Vec::new();
        let change = sent.change(&mut errors);
        assert!(errors.is_empty());
        assert_eq!(change.meta, Some(None));
        assert_eq!(change.credits, Some(None));
        assert_eq!(change.permissions, None);
        assert_eq!(change.external_id, None);
    }
}
