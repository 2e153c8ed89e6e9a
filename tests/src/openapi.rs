//! `docs/api.yaml` read as JSON values, and a validator for the part of JSON Schema (as OpenAPI
//! 3.0 writes it) that the file uses: `$ref`, `type`, `nullable`, `enum`, `properties`,
//! `required`, `items`, `additionalProperties`, `minimum` and `maximum`, with `description`,
//! `default` and `format` read as comments.
//!
//! It is strict where a lax check would let the file drift from the server: an object may hold
//! only the properties its schema names (unless `additionalProperties` allows more), and a
//! keyword it does not know is an error, not something silently skipped.

use std::collections::BTreeSet;

use serde_json::Value;

/// The keywords a schema may use; anything else fails validation.
const KEYWORDS: &[&str] = &[
    "$ref",
    "type",
    "nullable",
    "enum",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "minimum",
    "maximum",
    "description",
    "default",
    "format",
];

/// An OpenAPI document.
pub struct ApiDoc {
    pub root: Value,
}

impl ApiDoc {
    /// Parses OpenAPI YAML.
    pub fn parse(yaml: &str) -> Result<ApiDoc, String> {
        let root: Value = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
        if !root["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0."))
        {
            return Err(format!("not OpenAPI 3.0: openapi = {}", root["openapi"]));
        }
        Ok(ApiDoc { root })
    }

    /// The documented paths, such as `/api/streams/{app}/{name}`.
    pub fn paths(&self) -> BTreeSet<String> {
        self.root["paths"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The operation `method` (lowercase) of `path`, if documented.
    pub fn operation(&self, path: &str, method: &str) -> Option<&Value> {
        self.root["paths"].get(path)?.get(method)
    }

    /// Follows `$ref` (a local JSON pointer such as `#/components/schemas/Stream`) until a value
    /// without one; errors name a reference that leads nowhere.
    pub fn resolve<'a>(&'a self, mut v: &'a Value) -> Result<&'a Value, String> {
        for _ in 0..32 {
            let Some(r) = v.get("$ref").and_then(Value::as_str) else {
                return Ok(v);
            };
            let pointer = r
                .strip_prefix('#')
                .ok_or_else(|| format!("only local references are supported: {r}"))?;
            v = self
                .root
                .pointer(pointer)
                .ok_or_else(|| format!("dangling reference {r}"))?;
        }
        Err("reference loop".into())
    }

    /// Every `$ref` anywhere in the document that does not resolve.
    pub fn dangling_refs(&self) -> Vec<String> {
        let mut bad = Vec::new();
        walk(&self.root, &mut |v| {
            if let Some(r) = v.get("$ref").and_then(Value::as_str) {
                let ok = r
                    .strip_prefix('#')
                    .is_some_and(|p| self.root.pointer(p).is_some());
                if !ok {
                    bad.push(r.to_owned());
                }
            }
        });
        bad
    }

    /// The schema of the `status` response of an operation for `media` (such as
    /// `application/json`), references followed.
    pub fn response_schema<'a>(
        &'a self,
        op: &'a Value,
        status: &str,
        media: &str,
    ) -> Option<&'a Value> {
        let response = self.resolve(op["responses"].get(status)?).ok()?;
        let schema = response["content"].get(media)?.get("schema")?;
        self.resolve(schema).ok()
    }

    /// Checks `value` against `schema`; returns every mismatch, each with the JSON path where it
    /// was found (`$.streams[0].width`).
    pub fn validate(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, "$", &mut errors);
        errors
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = match self.resolve(schema) {
            Ok(s) => s,
            Err(e) => return errors.push(format!("{at}: {e}")),
        };
        let Some(keywords) = schema.as_object() else {
            return errors.push(format!("{at}: a schema must be an object, got {schema}"));
        };
        if let Some(k) = keywords.keys().find(|k| !KEYWORDS.contains(&k.as_str())) {
            return errors.push(format!("{at}: the validator does not know keyword `{k}`"));
        }
        if value.is_null() && schema["nullable"] == true {
            return;
        }
        if let Some(ty) = schema.get("type").and_then(Value::as_str) {
            let ok = match ty {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "boolean" => value.is_boolean(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                other => return errors.push(format!("{at}: unknown type `{other}`")),
            };
            if !ok {
                return errors.push(format!("{at}: expected {ty}, got {value}"));
            }
        } else if schema.get("type").is_some() {
            return errors.push(format!("{at}: `type` must be a string"));
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                errors.push(format!("{at}: {value} is not one of {allowed:?}"));
            }
        }
        if let Some(n) = value.as_f64() {
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                if n < min {
                    errors.push(format!("{at}: {n} is below the minimum {min}"));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                if n > max {
                    errors.push(format!("{at}: {n} is above the maximum {max}"));
                }
            }
        }
        if let Some(obj) = value.as_object() {
            let props = schema.get("properties").and_then(Value::as_object);
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(name) {
                        errors.push(format!("{at}: required property `{name}` is missing"));
                    }
                    if !props.is_some_and(|p| p.contains_key(name)) {
                        errors.push(format!(
                            "{at}: `{name}` is required but has no schema in `properties`"
                        ));
                    }
                }
            }
            let extra = schema.get("additionalProperties");
            for (name, v) in obj {
                let here = format!("{at}.{name}");
                match props.and_then(|p| p.get(name)) {
                    Some(s) => self.check(s, v, &here, errors),
                    None => match extra {
                        Some(Value::Bool(true)) => {}
                        Some(s @ Value::Object(_)) => self.check(s, v, &here, errors),
                        _ => errors.push(format!("{at}: property `{name}` is not documented")),
                    },
                }
            }
        }
        if let Some(items) = value.as_array() {
            match schema.get("items") {
                Some(s) => {
                    for (i, v) in items.iter().enumerate() {
                        self.check(s, v, &format!("{at}[{i}]"), errors);
                    }
                }
                None => errors.push(format!("{at}: an array schema needs `items`")),
            }
        }
    }
}

fn walk(v: &Value, f: &mut impl FnMut(&Value)) {
    f(v);
    match v {
        Value::Object(m) => m.values().for_each(|c| walk(c, f)),
        Value::Array(a) => a.iter().for_each(|c| walk(c, f)),
        _ => {}
    }
}
