//! The bytes of a Raft snapshot as openraft moves them: a seekable stream the node stores as it
//! likes.
//!
//! openraft sends a snapshot in chunks (`InstallSnapshot` calls of `snapshot_chunk_bytes` each):
//! the sender seeks to each chunk's offset and reads it, the receiver writes each chunk at its
//! offset and installs the whole when the last one is in. [`SnapshotData`] is what it reads and
//! writes: any [`SnapshotIo`], boxed. The node's is a file sealed block by block with a key of its
//! own, so neither side holds a whole snapshot in memory (issue 17 §1) and none of it is on disk
//! in the clear; this crate does not know that file, only that it is a stream.

use std::any::Any;
use std::io::{Cursor, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

/// A seekable byte stream that can hold a snapshot. Implemented for the node's sealed snapshot
/// file, and for an in-memory [`Cursor`] (tests, small tools).
pub trait SnapshotIo: AsyncRead + AsyncWrite + AsyncSeek + Send + Unpin + 'static {
    /// The value itself, for [`SnapshotData::downcast`].
    fn as_any(&self) -> &dyn Any;
    /// The value itself, for [`SnapshotData::downcast`].
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl SnapshotIo for Cursor<Vec<u8>> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A snapshot's bytes, as openraft holds them (`TypeConfig::SnapshotData`).
pub struct SnapshotData(Box<dyn SnapshotIo>);

impl SnapshotData {
    /// Wraps a stream.
    pub fn new(io: impl SnapshotIo) -> SnapshotData {
        SnapshotData(Box::new(io))
    }

    /// The stream as the type it was made from, or itself back if it is another.
    pub fn downcast<T: SnapshotIo>(self) -> Result<T, SnapshotData> {
        // Checked by reference first, so a mismatch can hand the stream back intact.
        if !self.0.as_any().is::<T>() {
            return Err(self);
        }
        match self.0.into_any().downcast::<T>() {
            Ok(io) => Ok(*io),
            // Not reached after the check above; there is no value left to hand back.
            Err(_) => Err(SnapshotData::new(Cursor::new(Vec::new()))),
        }
    }
}

impl std::fmt::Debug for SnapshotData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotData")
    }
}

impl AsyncRead for SnapshotData {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SnapshotData {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(mut self: Pin<&mut Self>, position: SeekFrom) -> std::io::Result<()> {
        Pin::new(&mut *self.0).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        Pin::new(&mut *self.0).poll_complete(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_comes_back_as_its_own_type_only() {
        let data = SnapshotData::new(Cursor::new(vec![1u8, 2, 3]));
        let back: Cursor<Vec<u8>> = data.downcast().expect("same type");
        assert_eq!(back.into_inner(), vec![1, 2, 3]);
        let data = SnapshotData::new(Cursor::new(vec![4u8]));
        let again = data.downcast::<NotACursor>().expect_err("another type");
        let back: Cursor<Vec<u8>> = again.downcast().expect("handed back intact");
        assert_eq!(back.into_inner(), vec![4]);
    }

    /// A second stream type, for the mismatch.
    #[derive(Debug)]
    struct NotACursor(Cursor<Vec<u8>>);

    impl AsyncRead for NotACursor {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for NotACursor {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    impl AsyncSeek for NotACursor {
        fn start_seek(mut self: Pin<&mut Self>, position: SeekFrom) -> std::io::Result<()> {
            Pin::new(&mut self.0).start_seek(position)
        }
        fn poll_complete(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<u64>> {
            Pin::new(&mut self.0).poll_complete(cx)
        }
    }

    impl SnapshotIo for NotACursor {
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
            self
        }
    }
}
