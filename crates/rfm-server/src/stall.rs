//! A client that stops reading our answer: a write that cannot proceed for `[server]
//! body_timeout_secs` ends the connection, so that nobody can hold a connection slot for
//! ever by requesting a file and never reading it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};

/// A connection's IO whose writes time out when they make no progress.
pub struct WriteStall<T> {
    inner: T,
    stall: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteStall<T> {
    pub fn new(inner: T, stall: Duration) -> WriteStall<T> {
        WriteStall {
            inner,
            stall,
            timer: None,
        }
    }

    /// Passes a ready write on (and forgets the wait); a pending one waits at most `stall`.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if polled.is_ready() {
            self.timer = None;
            return polled;
        }
        let stall = self.stall;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading the answer",
            )));
        }
        Poll::Pending
    }
}

impl<T: Read + Unpin> Read for WriteStall<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for WriteStall<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::rt::TokioIo;
    use std::time::Instant;

    #[tokio::test]
    async fn a_write_nobody_reads_ends_after_the_stall() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut io = WriteStall::new(TokioIo::new(ours), Duration::from_millis(200));
        let started = Instant::now();
        let chunk = [0u8; 1024];
        let err = std::future::poll_fn(|cx| {
            loop {
                match Pin::new(&mut io).poll_write(cx, &chunk) {
                    Poll::Ready(Ok(_)) => continue,
                    other => return other,
                }
            }
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(5),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn writes_that_proceed_are_untouched() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut io = WriteStall::new(TokioIo::new(ours), Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut theirs, &mut all)
                .await
                .map(|_| all.len())
        });
        for _ in 0..100 {
            let mut left = &[7u8; 100][..];
            while !left.is_empty() {
                let n = std::future::poll_fn(|cx| Pin::new(&mut io).poll_write(cx, left))
                    .await
                    .unwrap();
                left = &left[n..];
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(io);
        assert_eq!(reader.await.unwrap().unwrap(), 10_000);
    }
}
