//! JSON Schemas, compiled in one place: the manifest's when it loads, and each skill's input
//! schema once, when its route is made.

use serde_json::Value;

/// Compiles a skill's input schema. Remote `$ref`s are not fetched (the crate is built without
/// resolvers), so such a schema does not compile; `pattern`s with backtracking are bounded.
pub fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::fancy_regex().backtrack_limit(10_000))
        .build(schema)
        .map_err(|e| e.to_string())
}
