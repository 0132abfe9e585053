//! Skills: which agent serves a skill, and its input schema compiled once (by
//! [`compile_schema`], which also checks the manifest's schemas when it loads).

use std::sync::Arc;

use serde_json::Value;

use crate::engine::manifest::SkillSpec;
use crate::engine::schema::compile_schema;

/// One skill and the agent that serves it.
#[derive(Debug, Clone)]
pub struct SkillRoute {
    /// Index into the engine's agents.
    pub agent: usize,
    /// The skill.
    pub skill: SkillSpec,
    /// Its input schema, compiled (none when the skill declares none, or it did not compile).
    pub input: Option<Arc<jsonschema::Validator>>,
}

impl SkillRoute {
    pub(super) fn new(agent: usize, skill: SkillSpec) -> SkillRoute {
        let input = skill.input_schema.as_ref().and_then(|schema| match compile_schema(schema) {
            Ok(v) => Some(Arc::new(v)),
            Err(e) => {
                // Manifest schemas are compiled when the manifest is loaded; this is an upstream's.
                eprintln!("skill {:?}: its input schema does not compile, inputs go unchecked: {e}", skill.id);
                None
            }
        });
        SkillRoute { agent, skill, input }
    }

    /// Checks `input` against the skill's input schema; the error lists what is wrong, where.
    pub fn check_input(&self, input: &Value) -> Result<(), String> {
        let Some(v) = &self.input else { return Ok(()) };
        if v.is_valid(input) {
            return Ok(());
        }
        // Listing every problem of a huge input costs memory in proportion: past a size, the
        // first problem is enough. Values are masked: the answer never echoes the input.
        let big = serde_json::to_vec(input).map_or(usize::MAX, |b| b.len()) > 64 << 10;
        let describe = |e: &jsonschema::ValidationError<'_>| {
            let at = e.instance_path().to_string();
            let what: String = e.masked().to_string().chars().take(200).collect();
            format!("{}: {what}", if at.is_empty() { "/" } else { at.as_str() })
        };
        let problems: Vec<String> = if big {
            v.validate(input).err().iter().map(describe).collect()
        } else {
            v.iter_errors(input).take(10).map(|e| describe(&e)).collect()
        };
        Err(format!("the input does not match the input schema of skill {:?}: {}", self.skill.id, problems.join("; ")))
    }
}
