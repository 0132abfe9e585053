//! The grant check on a workspace operation (issue target: at most 10 µs each): JWT signature,
//! audience, expiry, subject and id, path shape, globs and output prefix.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use runtime_gateway::engine::grants::{Grants, Op, Scope};

fn grant_check(c: &mut Criterion) {
    let grants = Grants::new(&[7; 32], Duration::from_secs(3600));
    let scope = Scope {
        read: vec!["in/**".into(), "ref/*.json".into(), "out/**".into()],
        write: vec!["out/**".into()],
        out: "out/".into(),
    };
    let g = grants.issue("01a206a7-3bcb-7332-afcc-12cc515b827f", "writer", &scope);
    let run = "01a206a7-3bcb-7332-afcc-12cc515b827f";
    let mut group = c.benchmark_group("grant_check");
    group.bench_function("write allowed", |b| {
        b.iter(|| grants.check(&g.token, run, "writer", &g.id, Op::Write, "out/reports/2026/q3.md").unwrap())
    });
    group.bench_function("read denied (outside the globs)", |b| {
        b.iter(|| grants.check(&g.token, run, "writer", &g.id, Op::Read, "secret/keys/prod.pem").unwrap_err())
    });
    group.bench_function("baseline: HS256 JWT decode alone", |b| {
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_audience(&["writer"]);
        let key = jsonwebtoken::DecodingKey::from_secret(&[7; 32]);
        b.iter(|| jsonwebtoken::decode::<serde_json::Value>(&g.token, &key, &v).unwrap())
    });
    group.finish();
}

criterion_group!(benches, grant_check);
criterion_main!(benches);
