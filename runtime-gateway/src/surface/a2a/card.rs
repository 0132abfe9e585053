//! The Agent Card: built from the manifest, signed (JWS over its JCS form) with the gateway's
//! key, served at `/.well-known/agent-card.json` with an ETag.

use std::collections::HashMap;
use std::sync::Arc;

use a2a::{
    AgentCapabilities, AgentCard, AgentCardSignature, AgentExtension, AgentInterface, AgentProvider, AgentSkill,
    HttpAuthSecurityScheme, SecurityScheme,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use ledger_core::NamedKey;
use serde_json::json;

use crate::base::jcs::jcs;
use crate::engine::manifest::{Manifest, SkillSpec};
use crate::surface::a2a::extensions;
use crate::surface::state::Gateway;

/// The public card.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/.well-known/agent-card.json", get(agent_card))
}

/// The card as served: its JSON bytes and ETag.
#[derive(Debug, Clone)]
pub struct CardDoc {
    /// The card.
    pub card: AgentCard,
    /// Its JSON.
    pub json: Bytes,
    /// Strong ETag over the JSON.
    pub etag: String,
    /// When it was built (IMF-fixdate), for `Last-Modified`.
    pub last_modified: String,
}

/// RFC 8785 (JCS) canonical JSON of a value: sorted keys, no whitespace. Our cards hold only
/// strings, integers, booleans, arrays and objects, whose JCS form serde_json writes exactly.
/// Signs a card (JWS, RFC 7515, detached JCS payload, EdDSA) with the gateway key.
pub fn sign_card(card: &AgentCard, key: &NamedKey) -> AgentCardSignature {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let mut unsigned = card.clone();
    unsigned.signatures = None;
    let payload = jcs(&serde_json::to_value(&unsigned).expect("card serialises"));
    let protected = json!({
        "alg": "EdDSA",
        "typ": "JOSE",
        "kid": key.name(),
        "jwk": { "kty": "OKP", "crv": "Ed25519", "x": b64(&key.public_key()) },
    });
    let protected = b64(jcs(&protected).as_bytes());
    let signing_input = format!("{protected}.{}", b64(payload.as_bytes()));
    AgentCardSignature { protected, signature: b64(&key.sign(signing_input.as_bytes())), header: None }
}

/// Builds the gateway's card from the manifest.
pub fn build_card(
    manifest: &Manifest,
    skills: Vec<AgentSkill>,
    public_url: &str,
    anonymous: bool,
    push: bool,
    required_extensions: &[String],
    key: Option<&NamedKey>,
) -> CardDoc {
    let first = &manifest.agents[0];
    let g = &manifest.gateway;
    let mut schemes = HashMap::new();
    schemes.insert(
        "bearer".to_string(),
        SecurityScheme::HttpAuth(HttpAuthSecurityScheme {
            scheme: "Bearer".into(),
            description: Some("An API key or a JWT of a configured issuer, as Authorization: Bearer <token>".into()),
            bearer_format: None,
        }),
    );
    let mut card = AgentCard {
        name: g.name.clone().unwrap_or_else(|| first.name.clone()),
        description: g.description.clone().unwrap_or_else(|| first.description.clone()),
        version: g.version.clone().unwrap_or_else(|| first.version.clone()),
        supported_interfaces: vec![
            AgentInterface::new(public_url, a2a::TRANSPORT_PROTOCOL_JSONRPC),
            AgentInterface::new(public_url, a2a::TRANSPORT_PROTOCOL_HTTP_JSON),
            AgentInterface::new(public_url, a2a::TRANSPORT_PROTOCOL_GRPC),
        ],
        capabilities: AgentCapabilities {
            streaming: Some(true),
            push_notifications: Some(push),
            extensions: Some(vec![AgentExtension {
                uri: extensions::RECEIPT.to_string(),
                description: Some(
                    "The run's a2a-ledger receipt (SPEC §5: its entries with inclusion proofs under a signed \
                     checkpoint, verifiable offline) inline in the metadata of an ended task, under this URI"
                        .into(),
                ),
                required: Some(required_extensions.iter().any(|u| u == extensions::RECEIPT)),
                params: Some(HashMap::from([
                    ("format".to_string(), serde_json::json!("a2a-ledger/receipt/v1")),
                    ("receipts".to_string(), serde_json::json!(format!("{public_url}/runs/{{id}}/receipt"))),
                ])),
            }]),
            extended_agent_card: Some(true),
        },
        default_input_modes: vec!["text/plain".into(), "application/json".into()],
        default_output_modes: vec!["text/plain".into(), "application/json".into()],
        skills,
        provider: g.organization.clone().map(|o| AgentProvider { organization: o, url: public_url.to_string() }),
        documentation_url: None,
        icon_url: None,
        security_schemes: Some(schemes),
        security_requirements: (!anonymous).then(|| vec![HashMap::from([("bearer".to_string(), Vec::new())])]),
        signatures: None,
    };
    if let Some(key) = key {
        card.signatures = Some(vec![sign_card(&card, key)]);
    }
    let json = Bytes::from(serde_json::to_vec(&card).expect("card serialises"));
    let etag = format!("\"{}\"", &blake3::hash(&json).to_hex()[..32]);
    let last_modified = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    CardDoc { card, json, etag, last_modified }
}

/// The A2A skill of a manifest skill.
pub fn card_skill(s: &SkillSpec) -> AgentSkill {
    AgentSkill {
        id: s.id.clone(),
        name: s.name.clone(),
        description: s.description.clone(),
        tags: s.tags.clone(),
        examples: (!s.examples.is_empty()).then(|| s.examples.clone()),
        input_modes: None,
        output_modes: None,
        security_requirements: None,
    }
}

/// `GET /.well-known/agent-card.json`: public, cacheable, with `If-None-Match`.
pub async fn agent_card(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let card = &gw.card;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == card.etag || t.trim() == "*"));
    let mut r = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], card.json.clone()).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&card.etag).expect("ascii"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    if let Ok(v) = HeaderValue::from_str(&card.last_modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}
