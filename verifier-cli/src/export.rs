//! `ledger-verify export PACK --parquet OUT [--jsonl OUT]`: the SPEC §7 rows of a pack, written
//! while the pack is verified. Rows go out in record batches of [`BATCH_ROWS`]; the files are
//! written beside their destination and renamed into place only when the whole pack verified,
//! so an export never leaves rows of a pack that failed.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;

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
        self.run.append_value(e.run());
        self.seq.append_value(e.seq());
        self.kind.append_value(e.kind().as_str());
        self.ts.append_value(e.ts());
        self.actor.append_value(e.actor());
        self.grant.append_option(e.grant());
        match e.payload() {
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

/// What the writer thread is told: a batch to write, or that the export is complete (without it,
/// a closed channel means the export was abandoned and the file is not finished).
enum ToWriter {
    Batch(RecordBatch),
    Finish,
}

/// The Parquet side: rows are gathered into record batches here; a writer thread encodes and
/// compresses them (zstd) while the pack goes on being verified.
struct ParquetOut {
    cols: Columns,
    /// Full batches to the writer; bounded, so a slow disk holds the reader back.
    batches: Option<SyncSender<ToWriter>>,
    /// Writes, finishes and syncs the file; answers with the first error.
    writer: Option<JoinHandle<Result<(), Failure>>>,
    tmp: PathBuf,
    out: PathBuf,
}

impl ParquetOut {
    fn open(out: &Path, schema: &Arc<Schema>) -> Result<ParquetOut, Failure> {
        let tmp = tmp_of(out);
        let f = File::create(&tmp).map_err(|e| unchecked(&tmp, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid level")))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let (tx, rx) = std::sync::mpsc::sync_channel::<ToWriter>(2);
        let path = tmp.clone();
        let writer =
            ArrowWriter::try_new(f, schema.clone(), Some(props)).map_err(|e| unchecked(&tmp, e)).and_then(|mut w| {
                std::thread::Builder::new()
                    .name("parquet-writer".into())
                    .spawn(move || {
                        for message in rx {
                            match message {
                                ToWriter::Batch(batch) => w.write(&batch).map_err(|e| unchecked(&path, e))?,
                                ToWriter::Finish => {
                                    w.finish().map_err(|e| unchecked(&path, e))?;
                                    return w.inner().sync_all().map_err(|e| unchecked(&path, e));
                                }
                            }
                        }
                        Ok(()) // abandoned: the file is removed, not finished
                    })
                    .map_err(|e| Failure::Unchecked(format!("starting the Parquet writer: {e}")))
            });
        match writer {
            Ok(writer) => Ok(ParquetOut {
                cols: Columns::new(),
                batches: Some(tx),
                writer: Some(writer),
                tmp,
                out: out.to_path_buf(),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Hands a batch to the writer; `false` when the writer has stopped (its error comes at
    /// [`ParquetOut::finish`]).
    fn send(&mut self, schema: &Arc<Schema>) -> bool {
        let batch = self.cols.finish(schema);
        self.batches.as_ref().is_some_and(|tx| tx.send(ToWriter::Batch(batch)).is_ok())
    }

    /// The last rows, then waits for the file to be written and synced.
    fn finish(&mut self, schema: &Arc<Schema>) -> Result<(), Failure> {
        if self.cols.rows > 0 {
            self.send(schema);
        }
        if let Some(tx) = self.batches.take() {
            // A writer that stopped has its error waiting in `join`.
            let _ = tx.send(ToWriter::Finish);
        }
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Failure::Unchecked(format!("{}: the Parquet writer panicked", self.tmp.display()))),
            None => Ok(()),
        }
    }
}

/// Where rows go: Parquet, JSON lines, or both.
pub struct Exporter {
    schema: Arc<Schema>,
    parquet: Option<ParquetOut>,
    jsonl: Option<(BufWriter<File>, PathBuf, PathBuf)>,
    /// One row's attrs JSON, reused.
    attrs: Vec<u8>,
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
        let jsonl = match jsonl {
            Some(out) => {
                let tmp = tmp_of(out);
                let f = File::create(&tmp).map_err(|e| unchecked(&tmp, e))?;
                Some((BufWriter::with_capacity(1 << 20, f), tmp, out.to_path_buf()))
            }
            None => None,
        };
        let parquet = match parquet.map(|out| ParquetOut::open(out, &schema)) {
            Some(Err(e)) => {
                if let Some((_, tmp, _)) = &jsonl {
                    let _ = std::fs::remove_file(tmp);
                }
                return Err(e);
            }
            Some(Ok(p)) => Some(p),
            None => None,
        };
        Ok(Exporter { schema, parquet, jsonl, attrs: Vec::with_capacity(512), error: None, rows: 0 })
    }

    /// One entry that passed its own checks (rows are committed only once the whole pack has).
    pub fn row(&mut self, index: u64, e: &EntryView<'_>, leaf: &Hash) {
        if self.error.is_some() {
            return;
        }
        self.rows += 1;
        if let Some(p) = &mut self.parquet {
            self.attrs.clear();
            e.write_attrs_json(&mut self.attrs);
            let attrs = std::str::from_utf8(&self.attrs).expect("JSON text is UTF-8");
            p.cols.push(index, e, leaf, attrs);
            if p.cols.rows == BATCH_ROWS && !p.send(&self.schema) {
                // The writer stopped on an error; `commit` reports it. Nothing more to gather.
                self.error = Some(Failure::Unchecked(format!("{}: the Parquet writer stopped", p.tmp.display())));
            }
        }
        if let Some((w, tmp, _)) = &mut self.jsonl {
            let line = serde_json::json!({
                "index": index,
                "leaf_hash": hex::encode(leaf),
                "run": e.run(),
                "seq": e.seq(),
                "kind": e.kind().as_str(),
                "ts": e.ts(),
                "actor": e.actor(),
                "grant": e.grant(),
                "payload": e.payload().map(hex::encode),
                "attrs": e.event().attrs_json(),
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
        for (tmp, out) in self.parquet.iter().map(|p| (&p.tmp, &p.out)).chain(self.jsonl.iter().map(|j| (&j.1, &j.2))) {
            std::fs::rename(tmp, out).map_err(|e| unchecked(out, e))?;
        }
        Ok(self.rows)
    }

    fn finish_files(&mut self) -> Result<(), Failure> {
        // The writer's own error, if it stopped, says more than "stopped".
        let written = match &mut self.parquet {
            Some(p) => p.finish(&self.schema),
            None => Ok(()),
        };
        written?;
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some((w, tmp, _)) = &mut self.jsonl {
            w.flush().map_err(|e| unchecked(tmp, e))?;
            w.get_ref().sync_all().map_err(|e| unchecked(tmp, e))?;
        }
        Ok(())
    }

    /// The pack failed: removes the partial files.
    pub fn abort(mut self) {
        if let Some(p) = &mut self.parquet {
            // Stop the writer (a closed channel without `Finish`) before its file goes.
            p.batches = None;
            if let Some(w) = p.writer.take() {
                let _ = w.join();
            }
            let _ = std::fs::remove_file(&p.tmp);
        }
        if let Some((_, tmp, _)) = &self.jsonl {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
