//! A `sha256` log served by the real `ledger-server`, read with independent C2SP code, Cloudflare's
//! `signed_note` and `tlog_tiles` (azul): `signed_note` verifies the `/v1/checkpoint` note under
//! the log's vkey and `tlog_tiles` parses its body; `tlog_tiles`'s `TileHashReader` reads the tree
//! through our `/tile/<L>/<N>[.p/<W>]` endpoints (checking every tile it loads against the
//! checkpoint's root), recomputes that root, proves and checks inclusion of every entry read from
//! our `/tile/entries/…` bundles, and checks our own inclusion and consistency proofs.
//!
//! `tlog_tiles` 0.2 is a port of Go's `sumdb/tlog`, whose tile paths carry the tile height
//! (`tile/8/<L>/<N>`); C2SP `tlog-tiles` fixed the height at 8 and dropped it from the path
//! (`tile/<L>/<N>`). The reader below maps one to the other and nothing else.

mod common;

use common::*;
use ledger_core::TreeHash;
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint, Hash, HashReader, Tile, TileHashReader, TileReader};

/// `tlog_tiles`'s tile reader over our HTTP endpoints.
struct HttpTiles {
    base: String,
    rt: tokio::runtime::Handle,
    client: reqwest::Client,
}

impl HttpTiles {
    fn get(&self, path: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let r = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.bytes().await.unwrap().to_vec()
        })
    }
}

impl TileReader for HttpTiles {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                let path = t.path();
                let c2sp = path.strip_prefix("tile/8/").expect("height 8, a hash tile");
                let data = self.get(&format!("/tile/{c2sp}"));
                assert_eq!(data.len(), t.width() as usize * 32, "{path}");
                Ok(data)
            })
            .collect()
    }

    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

/// `/v1/checkpoint`, verified by `signed_note` under the descriptor's vkey and parsed by `tlog_tiles`.
async fn checkpoint(srv: &Server, vkey: &str) -> Checkpoint {
    let note = srv.get("/v1/checkpoint", None).await.text().await.unwrap();
    let note = Note::from_bytes(note.as_bytes()).unwrap();
    let list = VerifierList::new(vec![Box::new(StandardVerifier::new(vkey).unwrap())]);
    let (verified, unverified) = note.verify(&list).unwrap();
    assert_eq!((verified.len(), unverified.len()), (1, 0));
    let cp = Checkpoint::from_bytes(note.text()).unwrap();
    assert_eq!(cp.extension(), "");
    cp
}

fn hashes(v: &serde_json::Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(|h| Hash(B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tlog_tiles_and_signed_note_read_a_sha256_log_through_our_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("l"), &["--hash", "sha256", "--origin", "oracle.example/log"]);
    let (ingest, auditor) = (srv.token("gateway"), srv.token("auditor"));
    let desc = srv.descriptor().await;
    assert_eq!(desc.hash, TreeHash::Sha256);
    let key = gateway_key();

    // One batch at a time, so the log's order is the order posted. Over two full level-0 tiles,
    // with a partial third, a level-1 tile of width 2, and sizes off every power of two.
    let mut entries = vec![identity_entry(&key)];
    assert_eq!(srv.post_json(&entries, &ingest).await.status(), 200);
    let mut old = None;
    for i in 0..45 {
        let r = run(TreeHash::Sha256, &format!("oracle-{i}"), &key, "c", 10);
        assert_eq!(srv.post_json(&r, &ingest).await.status(), 200);
        entries.extend(r);
        if i == 20 {
            // An older checkpoint, over exactly the entries posted so far, for consistency.
            srv.wait_checkpoint(entries.len() as u64).await;
            old = Some(checkpoint(&srv, &desc.vkey).await);
        }
    }
    let old = old.unwrap();
    assert_eq!(old.size(), 274);
    srv.wait_checkpoint(entries.len() as u64).await;
    let cp = checkpoint(&srv, &desc.vkey).await;
    let (size, root) = (cp.size(), *cp.hash());
    assert_eq!((cp.origin(), size), ("oracle.example/log", entries.len() as u64));

    // Our proofs, fetched here; tlog_tiles checks them below.
    let mut ours = Vec::new();
    for i in [0, 1, 255, 256, 257, 300, size - 1] {
        let v: serde_json::Value =
            srv.get(&format!("/v1/proof/inclusion?index={i}&size={size}"), Some(&auditor)).await.json().await.unwrap();
        ours.push((i, hashes(&v["proof"])));
    }
    let v: serde_json::Value = srv
        .get(&format!("/v1/proof/consistency?from={}&to={size}", old.size()), Some(&auditor))
        .await
        .json()
        .await
        .unwrap();
    let our_consistency = hashes(&v["proof"]);

    let tiles =
        HttpTiles { base: srv.http.clone(), rt: tokio::runtime::Handle::current(), client: reqwest::Client::new() };
    tokio::task::spawn_blocking(move || {
        let reader = TileHashReader::new(size, root, &tiles);
        // The root recomputed from tiles, each checked by the reader against the checkpoint.
        assert_eq!(tlog_tiles::tree_hash(size, &reader).unwrap(), root);

        // Every entry from our bundles: its record hash is the leaf in our level-0 tile, and
        // tlog_tiles proves and checks its inclusion.
        let mut from_bundles = Vec::new();
        for n in 0..size.div_ceil(256) {
            let w = (size - n * 256).min(256);
            let path = if w == 256 { format!("/tile/entries/{n:03}") } else { format!("/tile/entries/{n:03}.p/{w}") };
            let bundle = tiles.get(&path);
            let mut at = 0;
            while at < bundle.len() {
                let len = u16::from_be_bytes([bundle[at], bundle[at + 1]]) as usize;
                from_bundles.push(bundle[at + 2..at + 2 + len].to_vec());
                at += 2 + len;
            }
        }
        assert_eq!(from_bundles, entries, "the bundles hold the entries in the order posted");
        let leaf_indexes: Vec<u64> = (0..size).map(|i| tlog_tiles::stored_hash_index(0, i)).collect();
        let leaves = reader.read_hashes(&leaf_indexes).unwrap();
        for (i, e) in entries.iter().enumerate() {
            let i = i as u64;
            assert_eq!(leaves[i as usize], tlog_tiles::record_hash(e), "leaf {i}");
            let proof = tlog_tiles::prove_record(size, i, &reader).unwrap();
            tlog_tiles::check_record(&proof, size, root, i, tlog_tiles::record_hash(e)).unwrap();
        }
        // Our inclusion proofs are RFC 9162's: the same hashes as tlog_tiles's, and they check.
        for (i, proof) in ours {
            let leaf = tlog_tiles::record_hash(&entries[i as usize]);
            tlog_tiles::check_record(&proof, size, root, i, leaf).unwrap();
            assert_eq!(proof, tlog_tiles::prove_record(size, i, &reader).unwrap(), "index {i}");
            let mut bad = proof.clone();
            bad[0].0[0] ^= 1;
            assert!(tlog_tiles::check_record(&bad, size, root, i, leaf).is_err());
        }
        // Our consistency proof from the older checkpoint checks, and equals tlog_tiles's.
        tlog_tiles::check_tree(&our_consistency, size, root, old.size(), *old.hash()).unwrap();
        assert_eq!(our_consistency, tlog_tiles::prove_tree(size, old.size(), &reader).unwrap());

        // A reader given another root refuses our tiles.
        let mut wrong = root;
        wrong.0[0] ^= 1;
        let reader = TileHashReader::new(size, wrong, &tiles);
        assert!(reader.read_hashes(&[tlog_tiles::stored_hash_index(0, 3)]).is_err());
    })
    .await
    .unwrap();
}
