//! The snapshot stream: what a snapshot holds, in the order it is written, read and installed one
//! record at a time, so neither the node that builds or sends a snapshot nor the one that
//! receives and installs it ever holds the whole in memory (issue 17 §1).
//!
//! Layout: `CLWSNAP5`, then frames (`u32 LE` length ‖ `postcard`), in this order:
//!
//! 1. the [`SnapshotMeta`] (the last log id and membership it covers, and its id);
//! 2. a [`Header`]: the next person id and how many of each of the following there are;
//! 3. one [`Entry`](clearway_gallery::Entry) per person, by id;
//! 4. one `(NoticeId, CancellationNotice)` per undelivered cancellation notice;
//! 5. the ledger's [`LedgerView`], its [`Revocations`], then one [`AuditRecord`] per record;
//! 6. a trailer: SHA-256 over every byte before it.
//!
//! A stream is checked whole ([`verify`]: lengths, counts, the trailer) before a node replaces its
//! replica with it; decoding is then record by record. On disk and in transit it is always sealed
//! or inside mutual TLS: nodes keep it in a [`SealedFile`](file::SealedFile), and openraft sends it
//! in chunks over the port's QUIC connections.

pub mod file;

use std::io::{Read, Write};

use clearway_gallery::ops::{AuditRecord, Ledger, LedgerView, Revocations};
use clearway_gallery::{CancellationNotice, NoticeId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::typ::SnapshotMeta;
use crate::error::{Error, Result};

/// The stream's first bytes.
pub const STREAM_MAGIC: &[u8; 8] = b"CLWSNAP5";
/// The longest frame a reader accepts (a person's entry is about 1 KiB; the ledger view grows
/// with the port's lanes).
pub const MAX_FRAME: usize = 64 << 20;

/// How many records of each kind follow the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The next person id to assign.
    pub next_id: u64,
    /// Persons (entries).
    pub persons: u64,
    /// Undelivered cancellation notices.
    pub notices: u64,
    /// Audit records.
    pub audit: u64,
}

/// Writes a snapshot stream; everything written is hashed for the trailer.
pub struct StreamWriter<W: Write> {
    out: W,
    hash: Sha256,
    buf: Vec<u8>,
}

impl<W: Write> StreamWriter<W> {
    /// Starts a stream: the magic, the meta and the header.
    pub fn start(out: W, meta: &SnapshotMeta, header: &Header) -> Result<StreamWriter<W>> {
        let mut w = StreamWriter {
            out,
            hash: Sha256::new(),
            buf: Vec::new(),
        };
        w.raw(STREAM_MAGIC)?;
        w.frame(meta)?;
        w.frame(header)?;
        Ok(w)
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.hash.update(bytes);
        self.out.write_all(bytes).map_err(stream_io)
    }

    /// Writes one record given as its `postcard` bytes.
    pub fn encoded_frame(&mut self, bytes: &[u8]) -> Result<()> {
        let len = u32::try_from(bytes.len())
            .ok()
            .filter(|&l| l as usize <= MAX_FRAME)
            .ok_or_else(|| Error::Store("a snapshot record too large".into()))?;
        self.raw(&len.to_le_bytes())?;
        self.raw(bytes)
    }

    /// Writes one record.
    pub fn frame<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.buf.clear();
        let buf = std::mem::take(&mut self.buf);
        let buf = postcard::to_extend(value, buf).map_err(|e| Error::Store(e.to_string()))?;
        let written = self.encoded_frame(&buf);
        self.buf = buf;
        written
    }

    /// Writes the trailer and hands back the output.
    pub fn finish(mut self) -> Result<W> {
        let digest: [u8; 32] = self.hash.clone().finalize().into();
        self.frame(&digest)?;
        self.out.flush().map_err(stream_io)?;
        Ok(self.out)
    }
}

fn stream_io(e: std::io::Error) -> Error {
    Error::Store(format!("snapshot stream: {e}"))
}

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::Store(format!("malformed snapshot: {what}"))
}

/// Reads a snapshot stream record by record.
pub struct StreamReader<R: Read> {
    input: R,
    hash: Sha256,
    buf: Vec<u8>,
    header: Header,
}

impl<R: Read> StreamReader<R> {
    /// Reads the magic, the meta and the header.
    pub fn start(input: R) -> Result<(SnapshotMeta, StreamReader<R>)> {
        let mut r = StreamReader {
            input,
            hash: Sha256::new(),
            buf: Vec::new(),
            header: Header::default(),
        };
        let mut magic = [0u8; 8];
        r.raw(&mut magic)?;
        if &magic != STREAM_MAGIC {
            return Err(Error::Store(
                "not a clearway snapshot stream (bad magic)".into(),
            ));
        }
        let meta = r.frame()?;
        r.header = r.frame()?;
        Ok((meta, r))
    }

    /// The counts the stream announced.
    pub fn header(&self) -> Header {
        self.header
    }

    fn raw(&mut self, out: &mut [u8]) -> Result<()> {
        self.input.read_exact(out).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => malformed("cut short"),
            _ => stream_io(e),
        })?;
        self.hash.update(&*out);
        Ok(())
    }

    /// The next frame's bytes (hashed).
    fn next_bytes(&mut self) -> Result<&[u8]> {
        let mut len = [0u8; 4];
        self.raw(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(malformed(format!("a record of {len} bytes")));
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(len, 0);
        self.raw(&mut buf)?;
        self.buf = buf;
        Ok(&self.buf)
    }

    /// Reads one record.
    pub fn frame<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let bytes = self.next_bytes()?;
        postcard::from_bytes(bytes).map_err(malformed)
    }

    /// Skips one record (checking only its length).
    pub fn skip(&mut self) -> Result<()> {
        self.next_bytes().map(|_| ())
    }

    /// Reads the trailer, checks it against what was read, and checks nothing follows.
    pub fn finish(mut self) -> Result<()> {
        let expected: [u8; 32] = self.hash.clone().finalize().into();
        let got: [u8; 32] = self.frame()?;
        if got != expected {
            return Err(malformed("its digest does not match its content"));
        }
        let mut extra = [0u8; 1];
        match self.input.read(&mut extra) {
            Ok(0) => Ok(()),
            Ok(_) => Err(malformed("bytes after the trailer")),
            Err(e) => Err(stream_io(e)),
        }
    }
}

/// Writes a whole snapshot stream: `persons` entries (each person's [`Entry`] as `postcard`
/// bytes, as the registry's store gives them; a failure to read one fails the snapshot, as does
/// a count other than `persons`), `notices` and the ledger, as the header counts them.
pub fn write<W: Write>(
    out: W,
    meta: &SnapshotMeta,
    next_id: u64,
    (persons, entries): (u64, impl Iterator<Item = Result<impl AsRef<[u8]>>>),
    notices: impl ExactSizeIterator<
        Item = (
            impl std::borrow::Borrow<NoticeId>,
            impl std::borrow::Borrow<CancellationNotice>,
        ),
    >,
    ledger: &Ledger,
) -> Result<W> {
    let header = Header {
        next_id,
        persons,
        notices: notices.len() as u64,
        audit: ledger.audit().len() as u64,
    };
    let mut w = StreamWriter::start(out, meta, &header)?;
    let mut written = 0;
    for entry in entries {
        w.encoded_frame(entry?.as_ref())?;
        written += 1;
    }
    if written != persons {
        return Err(Error::Store(format!(
            "the snapshot's header says {persons} persons, the store gave {written}"
        )));
    }
    for (id, notice) in notices {
        w.frame(&(id.borrow(), notice.borrow()))?;
    }
    w.frame(ledger.view())?;
    w.frame(ledger.revoked())?;
    for record in ledger.audit() {
        w.frame(record)?;
    }
    w.finish()
}

/// Checks a whole stream without decoding its records: the magic, every length, the counts and
/// the trailer. Returns its meta and header.
pub fn verify<R: Read>(input: R) -> Result<(SnapshotMeta, Header)> {
    let (meta, mut r) = StreamReader::start(input)?;
    let h = r.header();
    let records = h
        .persons
        .checked_add(h.notices)
        .and_then(|n| n.checked_add(h.audit))
        .and_then(|n| n.checked_add(2))
        .ok_or_else(|| malformed("impossible counts"))?;
    for _ in 0..records {
        r.skip()?;
    }
    r.finish()?;
    Ok((meta, h))
}

/// Reads the rest of a stream after its entries and notices: the ledger, then the trailer.
pub fn read_ledger<R: Read>(mut r: StreamReader<R>) -> Result<Ledger> {
    let view: LedgerView = r.frame()?;
    let revoked: Revocations = r.frame()?;
    // Grown as records come: the count is the sender's word until the trailer is checked.
    let mut audit = Vec::with_capacity(r.header().audit.min(1024) as usize);
    for _ in 0..r.header().audit {
        audit.push(r.frame::<AuditRecord>()?);
    }
    r.finish()?;
    Ok(Ledger::from_parts(view, audit, revoked))
}
