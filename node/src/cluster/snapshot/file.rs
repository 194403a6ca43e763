//! A snapshot file sealed block by block: what a node keeps its snapshot in and receives one
//! into, readable and writable as a stream without the whole in memory.
//!
//! Layout: `CLWSBF01` ‖ `u32 BE` length ‖ the file's own 32-byte key sealed with the node keyring
//! ‖ blocks. Every block but the last holds [`BLOCK`] bytes of the stream, sealed with the file's
//! key for its position (`snapshot-block` ‖ block number as associated data, so blocks cannot be
//! moved, swapped or taken from another file); the last holds the rest. Each sealed block is
//! [`SEAL_OVERHEAD`] bytes longer than what it holds, so the stream's length and every block's
//! place follow from the file's length.
//!
//! A key rotation re-seals the file's key in place (the header keeps its length); the blocks stay
//! as they are. A file is either written, front to back ([`SealedFile::create`]; seeking back and
//! writing drops what followed, as a re-sent chunk needs), or read ([`SealedFile::open`]).
//!
//! The work is synchronous file IO on blocks of 1 MiB; the async traits openraft drives run it in
//! place (a block takes about a millisecond).

use std::any::Any;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use clearway_wire::snapshot::SnapshotIo;
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::crypto::{DataKey, Sealer};
use crate::store::keyring::Keyring;

/// The file's first bytes.
pub const FILE_MAGIC: &[u8; 8] = b"CLWSBF01";
/// Stream bytes per sealed block (smaller in the crate's unit tests, so that their small
/// galleries span several blocks).
pub const BLOCK: usize = if cfg!(test) { 64 << 10 } else { 1 << 20 };
/// What sealing adds to a block (nonce and tag).
pub const SEAL_OVERHEAD: usize = 28;
const KEY_SLOT: (&[u8], &[u8]) = (b"snapshot", b"file-key");
const BLOCK_TREE: &[u8] = b"snapshot-block";

/// Whether a file is written or read.
enum Mode {
    /// Written front to back; `tail` holds the stream's last, unsealed bytes (block `len / BLOCK`).
    Write { tail: Zeroizing<Vec<u8>> },
    /// Read; `cached` is one opened block.
    Read {
        cached: Option<(u64, Zeroizing<Vec<u8>>)>,
    },
}

/// A sealed snapshot file (see the module's documentation).
pub struct SealedFile {
    file: File,
    path: PathBuf,
    /// The file's own key (zeroed on drop), kept to seal it anew in the header.
    key: DataKey,
    sealer: Sealer,
    /// Where block 0 starts.
    data_start: u64,
    /// The stream's length.
    len: u64,
    /// The stream position.
    pos: u64,
    mode: Mode,
    /// Free bytes the file's filesystem must keep: a block that would leave less is refused
    /// ([`SealedFile::with_reserve`]).
    reserve: u64,
}

/// What a snapshot being received must leave free on its disk by default: a snapshot's size is
/// the sender's to say, and a node that may send one (any node certificate that wins a vote) must
/// not be able to fill a lane's disk with it.
pub const RECEIVE_RESERVE: u64 = 256 << 20;

fn bad(path: &Path, what: &str) -> Error {
    Error::Store(format!("{}: {what}", path.display()))
}

impl SealedFile {
    /// Creates (or truncates) `path`, mode 0600, with a fresh key sealed under `keyring`.
    pub fn create(path: &Path, keyring: &Keyring) -> Result<SealedFile> {
        let key = DataKey::generate();
        let sealed_key = keyring.seal(KEY_SLOT.0, KEY_SLOT.1, key.as_bytes())?;
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| Error::io(path, e))?;
        let len = u32::try_from(sealed_key.len()).map_err(|_| bad(path, "key too long"))?;
        let mut header = FILE_MAGIC.to_vec();
        header.extend_from_slice(&len.to_be_bytes());
        header.extend_from_slice(&sealed_key);
        file.write_all(&header).map_err(|e| Error::io(path, e))?;
        Ok(SealedFile {
            file,
            path: path.to_path_buf(),
            sealer: key.sealer(),
            key,
            data_start: header.len() as u64,
            len: 0,
            pos: 0,
            mode: Mode::Write {
                tail: Zeroizing::new(Vec::with_capacity(BLOCK)),
            },
            reserve: 0,
        })
    }

    /// Refuses (as an I/O error) to write a block that would leave less than `bytes` free on the
    /// file's filesystem. Checked per 1 MiB block, with one `statvfs`.
    pub fn with_reserve(mut self, bytes: u64) -> SealedFile {
        self.reserve = bytes;
        self
    }

    fn check_reserve(&self, writing: u64) -> io::Result<()> {
        if self.reserve == 0 {
            return Ok(());
        }
        let st = rustix::fs::fstatvfs(&self.file)
            .map_err(|e| io::Error::from_raw_os_error(e.raw_os_error()))?;
        let available = st.f_bavail.saturating_mul(st.f_frsize);
        if available.saturating_sub(writing) < self.reserve {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "{}: a snapshot block would leave {} MiB free, below the reserve of {} MiB",
                    self.path.display(),
                    available.saturating_sub(writing) >> 20,
                    self.reserve >> 20
                ),
            ));
        }
        Ok(())
    }

    /// Opens `path` for reading; `Ok(None)` if it is not a sealed snapshot file (an older format).
    pub fn open(path: &Path, keyring: &Keyring) -> Result<Option<SealedFile>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let Some((key, data_start)) = read_header(&file, path, keyring)? else {
            return Ok(None);
        };
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let rest = size
            .checked_sub(data_start)
            .ok_or_else(|| bad(path, "truncated header"))?;
        let sealed_block = (BLOCK + SEAL_OVERHEAD) as u64;
        let blocks = rest.div_ceil(sealed_block);
        let len = rest - blocks * SEAL_OVERHEAD as u64;
        if rest % sealed_block != 0 && rest % sealed_block <= SEAL_OVERHEAD as u64 {
            return Err(bad(path, "a truncated block"));
        }
        Ok(Some(SealedFile {
            file,
            path: path.to_path_buf(),
            sealer: key.sealer(),
            key,
            data_start,
            len,
            pos: 0,
            mode: Mode::Read { cached: None },
            reserve: 0,
        }))
    }

    /// The stream's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the stream is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seals what is still unsealed and syncs the file to disk (a file being written).
    pub fn sync(&mut self) -> Result<()> {
        self.flush_tail().map_err(|e| Error::io(&self.path, e))?;
        self.file.sync_all().map_err(|e| Error::io(&self.path, e))
    }

    /// Syncs a written file and reads it from the start, with the key it was written with (so a
    /// key rotation meanwhile does not matter).
    pub fn into_reader(mut self) -> Result<SealedFile> {
        self.sync()?;
        self.mode = Mode::Read { cached: None };
        self.pos = 0;
        Ok(self)
    }

    /// Seals the file's key anew under the keyring's current key if the header has it under an
    /// older one, from the key this file holds (so the older key need not be kept). For a file
    /// being put in place as the node's snapshot: a build or a transfer that created it before a
    /// key rotation began must not leave it under the key the rotation retires. Returns whether
    /// it did. Needs a file this process created (opened for writing).
    pub fn seal_key_current(&self, keyring: &Keyring) -> Result<bool> {
        let Some(sealed) = read_sealed_key(&self.file, &self.path)? else {
            return Err(bad(&self.path, "not a sealed snapshot file"));
        };
        if !keyring.is_stale(&sealed) {
            return Ok(false);
        }
        let fresh = keyring.seal(KEY_SLOT.0, KEY_SLOT.1, self.key.as_bytes())?;
        if fresh.len() != sealed.len() {
            return Err(bad(&self.path, "the re-sealed key changed length"));
        }
        self.file
            .write_all_at(&fresh, (FILE_MAGIC.len() + 4) as u64)
            .and_then(|_| self.file.sync_all())
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(true)
    }

    /// Re-seals the file's key under the keyring's current key, in place (the header keeps its
    /// length). Returns whether it was under an older key.
    pub fn reseal_key(path: &Path, keyring: &Keyring) -> Result<bool> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let Some(sealed) = read_sealed_key(&file, path)? else {
            return Ok(false);
        };
        if !keyring.is_stale(&sealed) {
            return Ok(false);
        }
        let key = keyring.open(KEY_SLOT.0, KEY_SLOT.1, &sealed)?;
        let fresh = keyring.seal(KEY_SLOT.0, KEY_SLOT.1, &key)?;
        if fresh.len() != sealed.len() {
            return Err(bad(path, "the re-sealed key changed length"));
        }
        file.write_all_at(&fresh, (FILE_MAGIC.len() + 4) as u64)
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io(path, e))?;
        Ok(true)
    }

    fn block_offset(&self, block: u64) -> u64 {
        self.data_start + block * (BLOCK + SEAL_OVERHEAD) as u64
    }

    /// Reads and opens block `block` (of a file on disk).
    fn read_block(&self, block: u64) -> io::Result<Zeroizing<Vec<u8>>> {
        let start = block * BLOCK as u64;
        let plain = (self.len.saturating_sub(start)).min(BLOCK as u64) as usize;
        let mut sealed = vec![0u8; plain + SEAL_OVERHEAD];
        self.file
            .read_exact_at(&mut sealed, self.block_offset(block))?;
        self.sealer
            .open(BLOCK_TREE, &block.to_be_bytes(), &sealed)
            .map(Zeroizing::new)
            .map_err(|()| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: block {block} does not open", self.path.display()),
                )
            })
    }

    /// Seals `plain` as block `block` and writes it in its place, dropping what followed.
    fn write_block(&self, block: u64, plain: &[u8]) -> io::Result<()> {
        let sealed = self
            .sealer
            .seal(BLOCK_TREE, &block.to_be_bytes(), plain)
            .map_err(io::Error::other)?;
        let at = self.block_offset(block);
        self.check_reserve(sealed.len() as u64)?;
        self.file.write_all_at(&sealed, at)?;
        self.file.set_len(at + sealed.len() as u64)
    }

    /// Writes the unsealed tail as the (partial) last block.
    fn flush_tail(&mut self) -> io::Result<()> {
        if let Mode::Write { tail } = &self.mode {
            if !tail.is_empty() {
                self.write_block(self.len / BLOCK as u64, tail)?;
            }
        }
        Ok(())
    }

    /// Drops the stream from `at` on (a file being written).
    fn truncate(&mut self, at: u64) -> io::Result<()> {
        let block = at / BLOCK as u64;
        let keep = (at % BLOCK as u64) as usize;
        let tail_block = self.len / BLOCK as u64;
        let mut kept = if block == tail_block {
            match &self.mode {
                Mode::Write { tail } => tail.clone(),
                Mode::Read { .. } => return Err(read_only()),
            }
        } else {
            self.read_block(block)?
        };
        kept.truncate(keep);
        self.file.set_len(self.block_offset(block))?;
        self.len = at;
        self.mode = Mode::Write { tail: kept };
        Ok(())
    }
}

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a snapshot file opened for reading",
    )
}

/// The sealed key in a file's header, or `None` if the file does not start with [`FILE_MAGIC`].
fn read_sealed_key(file: &File, path: &Path) -> Result<Option<Vec<u8>>> {
    let mut head = [0u8; 12];
    match file.read_exact_at(&mut head, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    }
    if &head[..8] != FILE_MAGIC {
        return Ok(None);
    }
    let len = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
    if len > 256 {
        return Err(bad(path, "a key header of implausible length"));
    }
    let mut sealed = vec![0u8; len];
    file.read_exact_at(&mut sealed, 12)
        .map_err(|_| bad(path, "truncated header"))?;
    Ok(Some(sealed))
}

fn read_header(file: &File, path: &Path, keyring: &Keyring) -> Result<Option<(DataKey, u64)>> {
    let Some(sealed) = read_sealed_key(file, path)? else {
        return Ok(None);
    };
    let key = keyring.open(KEY_SLOT.0, KEY_SLOT.1, &sealed)?;
    let key = DataKey::from_bytes(&key).ok_or_else(|| bad(path, "a key of the wrong length"))?;
    Ok(Some((key, 12 + sealed.len() as u64)))
}

/// Whether `path` holds a sealed snapshot file (rather than an older format).
pub fn is_sealed_file(path: &Path) -> Result<bool> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(read_sealed_key(&file, path)?.is_some())
}

impl Read for SealedFile {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let block = self.pos / BLOCK as u64;
        let at = (self.pos % BLOCK as u64) as usize;
        let cached = match &self.mode {
            Mode::Read { cached } => cached.as_ref().filter(|(b, _)| *b == block).is_some(),
            Mode::Write { .. } => return Err(write_only()),
        };
        if !cached {
            let plain = self.read_block(block)?;
            self.mode = Mode::Read {
                cached: Some((block, plain)),
            };
        }
        let Mode::Read {
            cached: Some((_, plain)),
        } = &self.mode
        else {
            return Err(io::Error::other("snapshot block cache"));
        };
        let n = out.len().min(plain.len().saturating_sub(at));
        out[..n].copy_from_slice(&plain[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

fn write_only() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "a snapshot file being written")
}

impl Write for SealedFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if matches!(self.mode, Mode::Read { .. }) {
            return Err(read_only());
        }
        if self.pos < self.len {
            self.truncate(self.pos)?;
        }
        let mut rest = data;
        while !rest.is_empty() {
            let Mode::Write { tail } = &mut self.mode else {
                return Err(read_only());
            };
            let n = rest.len().min(BLOCK - tail.len());
            tail.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            self.len += n as u64;
            if tail.len() == BLOCK {
                let full = std::mem::replace(tail, Zeroizing::new(Vec::with_capacity(BLOCK)));
                self.write_block(self.len / BLOCK as u64 - 1, &full)?;
            }
        }
        self.pos = self.len;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Sealing a partial block on every flush would re-seal it on the next write: the tail
        // is sealed by `sync`, `shutdown` and when its block fills.
        Ok(())
    }
}

impl Seek for SealedFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) if p <= self.len => {
                self.pos = p;
                Ok(p)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek outside a snapshot file",
            )),
        }
    }
}

impl AsyncRead for SealedFile {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SealedFile {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write(data))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if matches!(this.mode, Mode::Read { .. }) {
            return Poll::Ready(Ok(()));
        }
        Poll::Ready(this.flush_tail().and_then(|_| this.file.sync_all()))
    }
}

impl AsyncSeek for SealedFile {
    fn start_seek(self: Pin<&mut Self>, to: SeekFrom) -> io::Result<()> {
        self.get_mut().seek(to).map(|_| ())
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.pos))
    }
}

impl SnapshotIo for SealedFile {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::custody::Custody;

    fn keyring(dir: &Path) -> Keyring {
        Keyring::load(&dir.join("node.keyring"), true, Arc::new(Custody::plain())).expect("keyring")
    }

    /// A stream of `len` bytes that says where each byte is, with a marker to look for on disk.
    fn stream(len: usize) -> Vec<u8> {
        let mut bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        let at = (BLOCK + 5).min(len - MARKER.len());
        bytes[at..at + MARKER.len()].copy_from_slice(MARKER);
        bytes
    }

    const MARKER: &[u8] = b"FACE-TEMPLATE-IN-CLEAR";

    /// A snapshot being received may not eat the disk's reserve, whatever length its sender
    /// gives: the block that would is refused with a clear error and not written.
    #[test]
    fn a_snapshot_that_would_eat_the_disk_reserve_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keyring = keyring(dir.path());
        let path = dir.path().join("snapshot.incoming");
        let data = stream(2 * BLOCK);
        // A reserve no disk here can keep: the first full block is refused.
        let mut file = SealedFile::create(&path, &keyring)
            .expect("create")
            .with_reserve(u64::MAX / 2);
        let header = std::fs::metadata(&path).expect("metadata").len();
        let e = file.write_all(&data).expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
        assert!(e.to_string().contains("below the reserve"), "{e}");
        assert_eq!(
            std::fs::metadata(&path).expect("metadata").len(),
            header,
            "nothing was written past the header"
        );
        // A reserve the disk keeps: written as without one.
        let mut file = SealedFile::create(&path, &keyring)
            .expect("create")
            .with_reserve(1 << 20);
        file.write_all(&data).expect("written");
        file.sync().expect("sync");
    }

    #[test]
    fn a_stream_written_in_odd_pieces_reads_back_from_anywhere() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keyring = keyring(dir.path());
        let path = dir.path().join("snapshot");
        let data = stream(2 * BLOCK + 12_345);
        let mut file = SealedFile::create(&path, &keyring).expect("create");
        // Pieces that straddle block boundaries, as openraft's chunks do.
        for piece in data.chunks(333_333) {
            file.write_all(piece).expect("write");
        }
        file.sync().expect("sync");
        let raw = std::fs::read(&path).expect("raw");
        assert_eq!(
            raw.len() as u64,
            file.data_start + data.len() as u64 + 3 * SEAL_OVERHEAD as u64
        );
        assert!(
            !raw.windows(MARKER.len()).any(|w| w == MARKER),
            "nothing of the stream is on disk in the clear"
        );

        let mut file = SealedFile::open(&path, &keyring)
            .expect("open")
            .expect("sealed");
        assert_eq!(file.len(), data.len() as u64);
        let mut back = Vec::new();
        file.read_to_end(&mut back).expect("read");
        assert!(back == data, "the stream reads back whole");
        for at in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 12_000] {
            file.seek(SeekFrom::Start(at as u64)).expect("seek");
            let mut piece = [0u8; 300];
            let n = file.read(&mut piece).expect("read");
            assert!(n > 0 && piece[..n] == data[at..at + n], "bytes at {at}");
        }
        assert_eq!(file.seek(SeekFrom::End(0)).expect("end"), data.len() as u64);
        assert!(file.seek(SeekFrom::Start(data.len() as u64 + 1)).is_err());
        assert!(
            file.write(b"x").is_err(),
            "a file opened to read is not written"
        );
    }

    #[test]
    fn writing_after_seeking_back_drops_what_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keyring = keyring(dir.path());
        let path = dir.path().join("snapshot");
        let data = stream(2 * BLOCK + 100);
        for back_to in [2 * BLOCK + 50, BLOCK + 7, 3] {
            let mut file = SealedFile::create(&path, &keyring).expect("create");
            file.write_all(&data).expect("write");
            // A chunk sent again: from its offset, the same bytes (then the rest).
            file.seek(SeekFrom::Start(back_to as u64)).expect("seek");
            file.write_all(&data[back_to..back_to + 10])
                .expect("rewrite");
            let mut file = file.into_reader().expect("reader");
            assert_eq!(file.len(), back_to as u64 + 10, "cut at {back_to}");
            let mut back = Vec::new();
            file.read_to_end(&mut back).expect("read");
            assert!(back == data[..back_to + 10], "rewritten from {back_to}");
        }
    }

    #[test]
    fn changed_moved_or_cut_blocks_do_not_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keyring = keyring(dir.path());
        let path = dir.path().join("snapshot");
        let data = stream(BLOCK + BLOCK / 2);
        let mut file = SealedFile::create(&path, &keyring).expect("create");
        file.write_all(&data).expect("write");
        file.sync().expect("sync");
        let start = file.data_start as usize;
        let good = std::fs::read(&path).expect("raw");
        let sealed = BLOCK + SEAL_OVERHEAD;

        let read_all = |bytes: &[u8]| -> Result<Vec<u8>> {
            std::fs::write(&path, bytes).expect("write raw");
            let mut file = SealedFile::open(&path, &keyring)?
                .ok_or_else(|| Error::Store("not sealed".into()))?;
            let mut back = Vec::new();
            file.read_to_end(&mut back)
                .map_err(|e| Error::Store(e.to_string()))?;
            Ok(back)
        };
        assert!(read_all(&good).expect("intact") == data);

        let mut flipped = good.clone();
        flipped[start + 1000] ^= 1;
        assert!(read_all(&flipped).is_err(), "a changed byte");

        // The second (partial) block moved to the first place.
        let mut moved = good[..start].to_vec();
        moved.extend_from_slice(&good[start + sealed..]);
        assert!(read_all(&moved).is_err(), "a moved block");

        let cut = &good[..good.len() - 10];
        assert!(read_all(cut).is_err(), "a cut block");

        let other = tempfile::tempdir().expect("tempdir");
        let other_keyring = Keyring::load(
            &other.path().join("node.keyring"),
            true,
            Arc::new(Custody::plain()),
        )
        .expect("keyring");
        std::fs::write(&path, &good).expect("write raw");
        assert!(
            SealedFile::open(&path, &other_keyring).is_err(),
            "another node's keyring does not open it"
        );
    }

    #[test]
    fn a_key_rotation_reseals_the_header_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keyring = keyring(dir.path());
        let path = dir.path().join("snapshot");
        let data = stream(BLOCK + 10);
        let mut file = SealedFile::create(&path, &keyring).expect("create");
        file.write_all(&data).expect("write");
        file.sync().expect("sync");
        let before = std::fs::read(&path).expect("raw");
        assert!(
            !SealedFile::reseal_key(&path, &keyring).expect("reseal"),
            "current already"
        );
        keyring.begin_rotation().expect("rotate");
        assert!(SealedFile::reseal_key(&path, &keyring).expect("reseal"));
        keyring.finish_rotation().expect("old key destroyed");
        let after = std::fs::read(&path).expect("raw");
        assert_eq!(before.len(), after.len());
        assert_ne!(
            before[..file.data_start as usize],
            after[..file.data_start as usize]
        );
        assert_eq!(
            before[file.data_start as usize..],
            after[file.data_start as usize..],
            "the blocks are untouched"
        );
        let mut file = SealedFile::open(&path, &keyring)
            .expect("open")
            .expect("sealed");
        let mut back = Vec::new();
        file.read_to_end(&mut back).expect("read");
        assert!(back == data, "still opens under the new key");
    }

    #[test]
    fn other_files_are_not_taken_for_sealed_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keyring = keyring(dir.path());
        let path = dir.path().join("snapshot");
        for bytes in [&b""[..], b"CLWSBF0", b"\x00\x00\x00\x40older format"] {
            std::fs::write(&path, bytes).expect("write");
            assert!(!is_sealed_file(&path).expect("check"));
            assert!(SealedFile::open(&path, &keyring).expect("open").is_none());
        }
        std::fs::write(&path, b"CLWSBF01\xff\xff\xff\xff").expect("write");
        assert!(
            SealedFile::open(&path, &keyring).is_err(),
            "an absurd header"
        );
    }
}
