//! RFC 8785 (JCS) canonical JSON: what `artifact.added` hashes (docs/FORMATS.md §9) and what the
//! Agent Card's signature covers.

use serde_json::Value;

/// RFC 8785 (JCS) canonical JSON of a value: sorted keys, no whitespace. Our cards hold only
/// strings, integers, booleans, arrays and objects, whose JCS form serde_json writes exactly.
pub fn jcs(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // JCS sorts by UTF-16 code units; for the ASCII keys of a card that is byte order.
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            let body: Vec<String> =
                keys.iter().map(|k| format!("{}:{}", Value::String((*k).clone()), jcs(&map[*k]))).collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(jcs).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_and_whitespace_is_gone() {
        let v = serde_json::json!({ "b": [1, { "d": true, "c": "x" }], "a": null });
        assert_eq!(jcs(&v), r#"{"a":null,"b":[1,{"c":"x","d":true}]}"#);
    }
}
