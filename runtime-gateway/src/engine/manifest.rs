//! The manifest (TOML): the agents behind the gateway, their skills and one upstream each.
//!
//! ```toml
//! [gateway]                      # optional: how the Agent Card names the gateway
//! name = "acme-agents"
//!
//! [[agent]]
//! name = "summarizer"
//! description = "Summarises documents"
//! version = "1.2.0"
//! upstream = { kind = "http", url = "http://127.0.0.1:9000/run", timeout_secs = 120 }
//!
//! [[agent.skill]]
//! id = "summarize"
//! name = "Summarize"
//! description = "Summarises a text"
//! tags = ["text"]
//! input_schema = { type = "object", required = ["text"], properties = { text = { type = "string" } } }
//! output_schema = { type = "object" }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

/// The whole manifest.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// How the gateway presents itself.
    #[serde(default)]
    pub gateway: GatewayInfo,
    /// The agents, in order; the first one's first skill is the default for A2A messages that
    /// name none.
    #[serde(rename = "agent")]
    pub agents: Vec<AgentSpec>,
}

/// The gateway's own name on its Agent Card.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayInfo {
    /// Card name (default: the first agent's).
    pub name: Option<String>,
    /// Card description (default: the first agent's).
    pub description: Option<String>,
    /// Card version (default: the first agent's).
    pub version: Option<String>,
    /// Provider organisation shown on the card.
    pub organization: Option<String>,
}

/// One agent.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Name, unique in the manifest.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Its version.
    #[serde(default = "default_version")]
    pub version: String,
    /// Where its calls go.
    pub upstream: UpstreamSpec,
    /// Its skills (for an `a2a` or `mcp` upstream they may be left out and are then read from
    /// the upstream's Agent Card or tool list at start).
    #[serde(default, rename = "skill")]
    pub skills: Vec<SkillSpec>,
}

fn default_version() -> String {
    "1.0.0".into()
}

/// One skill.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillSpec {
    /// Id, unique across the manifest (it is also the path of `/invoke/{skill}`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Example prompts.
    #[serde(default)]
    pub examples: Vec<String>,
    /// JSON Schema of the input.
    #[serde(default)]
    pub input_schema: Option<serde_json::Value>,
    /// JSON Schema of the output.
    #[serde(default)]
    pub output_schema: Option<serde_json::Value>,
    /// What a run's grant allows in its workspace (default: read all, write `out/**`).
    #[serde(default)]
    pub workspace: Option<crate::engine::grants::Scope>,
}

/// Where an agent's calls go. The upstream never sees the caller's credentials: only the
/// headers configured here are sent.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum UpstreamSpec {
    /// Any A2A 1.0 agent, by the URL of its Agent Card's JSON-RPC interface (or its base URL,
    /// where `/.well-known/agent-card.json` is read).
    A2a {
        /// Base URL of the agent.
        url: String,
        /// Extra headers (for example the upstream's own credentials).
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Longest a call may take.
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
        /// A JWK (inline table) the upstream's Agent Card must be signed with (A2A §8.4).
        #[serde(default)]
        card_key: Option<Box<jsonwebtoken::jwk::Jwk>>,
        /// A JWKS URL whose keys (matched by `kid`) the card may be signed with.
        #[serde(default)]
        card_jwks: Option<String>,
        /// `required`: calls are refused unless the card's signature verifies under `card_key`
        /// or `card_jwks`; `checked` (default): the verdict is recorded, calls go ahead.
        #[serde(default)]
        card_signature: CardSignature,
    },
    /// A plain webhook: POST JSON input, JSON result back, or NDJSON progress lines then the result.
    Http {
        /// The webhook URL.
        url: String,
        /// Extra headers.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Longest a call may take.
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
    },
    /// Any MCP server over streamable HTTP: its tools become skills (all of them when the agent
    /// declares none, named `prefix` + tool name), and each call is one `tools/call`.
    Mcp {
        /// The server's MCP endpoint (for example `http://127.0.0.1:9000/mcp`).
        url: String,
        /// Extra headers (for example the upstream's own `Authorization`).
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Longest a call may take.
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
        /// Put before each tool name to make its skill id (MCP's advice for aggregators), for
        /// example `"files."`.
        #[serde(default)]
        prefix: String,
    },
    /// A local MCP server speaking over its stdin and stdout, started and supervised by the
    /// gateway (restarted when it exits), its stderr captured into the gateway's log.
    Stdio {
        /// The program and its arguments (the program by path, or found on the `PATH` that `env`
        /// gives it).
        command: Vec<String>,
        /// The whole environment of the process: nothing of the gateway's own is passed on.
        #[serde(default)]
        env: BTreeMap<String, String>,
        /// Longest a call may take.
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
        /// Put before each tool name to make its skill id, as for `mcp`.
        #[serde(default)]
        prefix: String,
    },
    /// The built-in demo agent.
    Demo,
}

impl UpstreamSpec {
    /// True when the skills may be left out of the manifest and are learnt from the upstream at
    /// start (an `a2a` agent's card, an `mcp` server's tool list).
    pub fn learns_skills(&self) -> bool {
        matches!(self, UpstreamSpec::A2a { .. } | UpstreamSpec::Mcp { .. } | UpstreamSpec::Stdio { .. })
    }
}

/// What an `a2a` upstream's card signature decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardSignature {
    /// Checked when a key is named; the verdict is recorded, calls go ahead whatever it is.
    #[default]
    Checked,
    /// Calls are refused unless the signature verifies.
    Required,
}

fn default_timeout() -> u64 {
    300
}

impl SkillSpec {
    /// The input schema as JSON.
    pub fn input_schema_json(&self) -> Option<serde_json::Value> {
        self.input_schema.clone()
    }

    /// The output schema as JSON.
    pub fn output_schema_json(&self) -> Option<serde_json::Value> {
        self.output_schema.clone()
    }
}

impl Manifest {
    /// Reads and checks a manifest file.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the manifest {}", path.display()))?;
        Manifest::parse(&text).with_context(|| format!("manifest {}", path.display()))
    }

    /// Parses and checks a manifest.
    pub fn parse(text: &str) -> Result<Manifest> {
        let m: Manifest = toml::from_str(text)?;
        m.check()?;
        Ok(m)
    }

    /// The manifest served when none is given: the demo agent.
    pub fn demo() -> Manifest {
        Manifest::parse(DEMO_MANIFEST).expect("the built-in demo manifest is valid")
    }

    fn check(&self) -> Result<()> {
        if self.agents.is_empty() {
            bail!("declares no agent: add an [[agent]] table");
        }
        let mut agents = HashSet::new();
        let mut skills = HashSet::new();
        for a in &self.agents {
            if a.name.is_empty() || !agents.insert(a.name.as_str()) {
                bail!("agent name {:?} is empty or used twice", a.name);
            }
            match &a.upstream {
                UpstreamSpec::A2a { url, .. } | UpstreamSpec::Http { url, .. } | UpstreamSpec::Mcp { url, .. } => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        bail!("agent {:?}: upstream url {url:?} must be http:// or https://", a.name);
                    }
                }
                UpstreamSpec::Demo | UpstreamSpec::Stdio { .. } => {}
            }
            if let UpstreamSpec::A2a { card_key, card_jwks, card_signature, .. } = &a.upstream {
                if *card_signature == CardSignature::Required && card_key.is_none() && card_jwks.is_none() {
                    bail!(
                        "agent {:?}: card_signature = \"required\" needs card_key (a JWK) or card_jwks (a JWKS URL)",
                        a.name
                    );
                }
                if let Some(u) = card_jwks
                    && !(u.starts_with("https://") || u.starts_with("http://"))
                {
                    bail!("agent {:?}: card_jwks {u:?} must be an http:// or https:// URL", a.name);
                }
            }
            if let UpstreamSpec::Stdio { command, .. } = &a.upstream
                && command.first().is_none_or(|c| c.is_empty())
            {
                bail!("agent {:?}: a stdio upstream needs command = [\"program\", \"arg\", …]", a.name);
            }
            if let UpstreamSpec::Mcp { prefix, .. } | UpstreamSpec::Stdio { prefix, .. } = &a.upstream
                && !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                bail!("agent {:?}: prefix {prefix:?} must be characters of [A-Za-z0-9._-]", a.name);
            }
            if a.skills.is_empty() && !a.upstream.learns_skills() {
                bail!("agent {:?} declares no skill: add [[agent.skill]] tables", a.name);
            }
            for s in &a.skills {
                let ok = !s.id.is_empty()
                    && s.id.len() <= 64
                    && s.id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                if !ok {
                    bail!("agent {:?}: skill id {:?} must be 1..64 characters of [A-Za-z0-9._-]", a.name, s.id);
                }
                if !skills.insert(s.id.as_str()) {
                    bail!("skill id {:?} is used twice; skill ids are unique across agents", s.id);
                }
                if let Some(scope) = &s.workspace {
                    scope.check().with_context(|| format!("skill {:?}: workspace", s.id))?;
                }
                for (what, schema) in [("input_schema", &s.input_schema), ("output_schema", &s.output_schema)] {
                    if let Some(schema) = schema {
                        if !schema.is_object() {
                            bail!("skill {:?}: {what} must be a table (a JSON Schema object)", s.id);
                        }
                        if let Err(e) = crate::engine::schema::compile_schema(schema) {
                            bail!("skill {:?}: {what} is not a valid JSON Schema: {e}", s.id);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The demo agent's manifest: one skill for each path a run can take.
pub const DEMO_MANIFEST: &str = r#"
[[agent]]
name = "demo"
description = "The built-in demo agent of a2a-ledger: every run it does is recorded and sealed."
version = "1.0.0"
upstream = { kind = "demo" }

[[agent.skill]]
id = "echo"
name = "Echo"
description = "Answers at once with its input."
tags = ["demo", "quick"]
examples = ["hello"]
input_schema = { type = "object", properties = { text = { type = "string" } } }
output_schema = { type = "object", properties = { echo = {} } }

[[agent.skill]]
id = "slow"
name = "Slow"
description = "Works in steps and reports progress; cancelable. Input: steps (1..20, default 4), delay_ms (default 250)."
tags = ["demo", "progress"]
input_schema = { type = "object", properties = { steps = { type = "integer", minimum = 1, maximum = 20 }, delay_ms = { type = "integer", minimum = 0, maximum = 10000 } } }
output_schema = { type = "object", properties = { steps = { type = "integer" } } }

[[agent.skill]]
id = "ask"
name = "Ask"
description = "Asks for a name (input_required), then greets it."
tags = ["demo", "input-required"]
input_schema = { type = "object" }
output_schema = { type = "object", properties = { greeting = { type = "string" } } }

[[agent.skill]]
id = "report"
name = "Report"
description = "Produces two artifacts: a Markdown report and a JSON data file."
tags = ["demo", "artifacts"]
input_schema = { type = "object", properties = { title = { type = "string" } } }
output_schema = { type = "object", properties = { artifacts = { type = "array" } } }

[[agent.skill]]
id = "conformance"
name = "Conformance"
description = "Answers the A2A conformance kit's scenarios, chosen by the messageId prefix (tck-complete-task, tck-input-required, tck-artifact-*, tck-stream-*, tck-message-response, tck-reject-task)."
tags = ["demo", "a2a-tck"]

[[agent.skill]]
id = "fail"
name = "Fail"
description = "Always fails, to show a failed run's receipt."
tags = ["demo", "failure"]
input_schema = { type = "object" }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_must_compile() {
        let skill = |schema: &str| {
            format!(
                "[[agent]]\nname = \"a\"\nupstream = {{ kind = \"demo\" }}\n[[agent.skill]]\nid = \"s\"\nname = \"S\"\ninput_schema = {schema}\n"
            )
        };
        assert!(Manifest::parse(&skill("{ type = \"object\", required = [\"x\"] }")).is_ok());
        let e = format!("{:#}", Manifest::parse(&skill("{ type = \"nonsense\" }")).unwrap_err());
        assert!(e.contains("skill \"s\": input_schema is not a valid JSON Schema"), "{e}");
        let e = format!("{:#}", Manifest::parse(&skill("\"a string\"")).unwrap_err());
        assert!(e.contains("must be a table"), "{e}");
    }
}
