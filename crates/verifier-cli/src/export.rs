//! `ledger-verify export PACK --parquet OUT [--jsonl OUT]`: the SPEC §7 rows of a pack, written
//! while the pack is verified. Rows go out in record batches of [`BATCH_ROWS`]; the files are
//! written beside their destination and renamed into place only when the whole pack verified,
//! so an export never leaves rows of a pack that failed.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    FixedSizeBinaryBuilder, StringBuilder, StringDictionaryBuilder, TimestampNanosecondBuilder, UInt64Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use ledger_core::{EntryView, Hash};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::trust::{Failure, unchecked};

/// Rows per record batch handed to the writer.
pub const BATCH_ROWS: usize = 64 * 1024;
/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 1024 * 1024;

/// The SPEC §7 schema.
pub fn schema() -> Arc<Schema> {
    let hash = DataType::FixedSizeBinary(32);
    Arc::new(Schema::new(vec![
        Field::new("index", DataType::UInt64, false),
        Field::new("leaf_hash", hash.clone(), false),
        Field::new("run", DataType::Utf8, false),
        Field::new("seq", DataType::UInt64, false),
        Field::new("kind", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), false),
        Field::new("actor", DataType::Utf8, false),
        Field::new("grant", DataType::Utf8, true),
        Field::new("payload", hash, true),
        Field::new("attrs", DataType::Utf8, false),
    ]))
}

struct Columns {
    index: UInt64Builder,
    leaf: FixedSizeBinaryBuilder,
    run: StringBuilder,
    seq: UInt64Builder,
    kind: StringDictionaryBuilder<Int32Type>,
    ts: TimestampNanosecondBuilder,
    actor: StringBuilder,
    grant: StringBuilder,
    payload: FixedSizeBinaryBuilder,
    attrs: StringBuilder,
    rows: usize,
}

impl Columns {
    fn new() -> Columns {
        Columns {
            index: UInt64Builder::with_capacity(BATCH_ROWS),
            leaf: FixedSizeBinaryBuilder::with_capacity(BATCH_ROWS, 32),
            run: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 24),
            seq: UInt64Builder::with_capacity(BATCH_ROWS),
            kind: StringDictionaryBuilder::new(),
            ts: TimestampNanosecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC"),
            actor: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 8),
            grant: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16),
            payload: FixedSizeBinaryBuilder::with_capacity(BATCH_ROWS, 32),
            attrs: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 160),
            rows: 0,
        }
    }

    fn push(&mut self, index: u64, e: &EntryView<'_>, leaf: &Hash, attrs: &str) {
        self.index.append_value(index);
        self.leaf.append_value(leaf).expect("32 bytes");
        self.run.append_value(e.run);
        self.seq.append_value(e.seq);
        self.kind.append_value(e.kind().as_str());
        self.ts.append_value(e.ts);
        self.actor.append_value(e.actor);
        self.grant.append_option(e.grant);
        match &e.payload {
            Some(p) => self.payload.append_value(p).expect("32 bytes"),
            None => self.payload.append_null(),
        }
        self.attrs.append_value(attrs);
        self.rows += 1;
    }

    fn finish(&mut self, schema: &Arc<Schema>) -> RecordBatch {
        self.rows = 0;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.index.finish()),
            Arc::new(self.leaf.finish()),
            Arc::new(self.run.finish()),
            Arc::new(self.seq.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.actor.finish()),
            Arc::new(self.grant.finish()),
            Arc::new(self.payload.finish()),
            Arc::new(self.attrs.finish()),
        ];
        RecordBatch::try_new(schema.clone(), cols).expect("columns match the schema")
    }
}

/// Where rows go: Parquet, JSON lines, or both.
pub struct Exporter {
    schema: Arc<Schema>,
    parquet: Option<(ArrowWriter<File>, Columns, PathBuf, PathBuf)>,
    jsonl: Option<(BufWriter<File>, PathBuf, PathBuf)>,
    error: Option<Failure>,
    rows: u64,
}

fn tmp_of(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

impl Exporter {
    /// Opens the outputs (as `<OUT>.partial` until [`Exporter::commit`]).
    pub fn new(parquet: Option<&Path>, jsonl: Option<&Path>) -> Result<Exporter, Failure> {
        let schema = schema();
        let parquet = match parquet {
            Some(out) => {
                let tmp = tmp_of(out);
                let f = File::create(&tmp).map_err(|e| unchecked(&tmp, e))?;
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid level")))
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .build();
                let w = ArrowWriter::try_new(f, schema.clone(), Some(props)).map_err(|e| unchecked(&tmp, e))?;
                Some((w, Columns::new(), tmp, out.to_path_buf()))
            }
            None => None,
        };
        let jsonl = match jsonl {
            Some(out) => {
                let tmp = tmp_of(out);
                let f = File::create(&tmp).map_err(|e| unchecked(&tmp, e))?;
                Some((BufWriter::with_capacity(1 << 20, f), tmp, out.to_path_buf()))
            }
            None => None,
        };
        Ok(Exporter { schema, parquet, jsonl, error: None, rows: 0 })
    }

    /// One verified entry.
    pub fn row(&mut self, index: u64, e: &EntryView<'_>, leaf: &Hash) {
        if self.error.is_some() {
            return;
        }
        self.rows += 1;
        let attrs = e.event().attrs_json();
        if let Some((w, cols, tmp, _)) = &mut self.parquet {
            cols.push(index, e, leaf, &attrs.to_string());
            if cols.rows == BATCH_ROWS {
                let batch = cols.finish(&self.schema);
                if let Err(err) = w.write(&batch) {
                    self.error = Some(unchecked(tmp, err));
                }
            }
        }
        if let Some((w, tmp, _)) = &mut self.jsonl {
            let line = serde_json::json!({
                "index": index,
                "leaf_hash": hex::encode(leaf),
                "run": e.run,
                "seq": e.seq,
                "kind": e.kind().as_str(),
                "ts": e.ts,
                "actor": e.actor,
                "grant": e.grant,
                "payload": e.payload.map(hex::encode),
                "attrs": attrs,
            });
            if let Err(err) =
                serde_json::to_writer(&mut *w, &line).map_err(std::io::Error::from).and_then(|_| w.write_all(b"\n"))
            {
                self.error = Some(unchecked(tmp, err));
            }
        }
    }

    /// After the pack verified: flushes, syncs and closes both outputs, then moves them into
    /// place; if anything fails before the renames, both partial files are removed.
    pub fn commit(mut self) -> Result<u64, Failure> {
        let finished = self.finish_files();
        if let Err(e) = finished {
            self.abort();
            return Err(e);
        }
        for (tmp, out) in self.parquet.iter().map(|p| (&p.2, &p.3)).chain(self.jsonl.iter().map(|j| (&j.1, &j.2))) {
            std::fs::rename(tmp, out).map_err(|e| unchecked(out, e))?;
        }
        Ok(self.rows)
    }

    fn finish_files(&mut self) -> Result<(), Failure> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some((w, cols, tmp, _)) = &mut self.parquet {
            if cols.rows > 0 {
                let batch = cols.finish(&self.schema);
                w.write(&batch).map_err(|e| unchecked(tmp, e))?;
            }
            w.finish().map_err(|e| unchecked(tmp, e))?;
            w.inner().sync_all().map_err(|e| unchecked(tmp, e))?;
        }
        if let Some((w, tmp, _)) = &mut self.jsonl {
            w.flush().map_err(|e| unchecked(tmp, e))?;
            w.get_ref().sync_all().map_err(|e| unchecked(tmp, e))?;
        }
        Ok(())
    }

    /// The pack failed: removes the partial files.
    pub fn abort(self) {
        if let Some((_, _, tmp, _)) = &self.parquet {
            let _ = std::fs::remove_file(tmp);
        }
        if let Some((_, tmp, _)) = &self.jsonl {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
