//! Pseudo-terminal pairs for serial tests: the simulator serves the master side, the code
//! under test opens the slave's path as it would open `/dev/ttyUSB0`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The master side of a pseudo-terminal, as an async byte stream. It keeps the slave side open
/// too, so reads do not fail while the code under test has not opened (or has closed) it.
#[derive(Debug)]
pub struct PtyMaster {
    master: AsyncFd<OwnedFd>,
    _slave: OwnedFd,
}

/// Opens a pseudo-terminal pair in raw mode: the master as an async stream, and the path of
/// the slave (e.g. `/dev/pts/5`) for a serial library to open. Must be called within a Tokio
/// runtime.
pub fn open_pty() -> io::Result<(PtyMaster, String)> {
    let pty = openpty(None, None)?;
    // Raw: no echo, no line editing, no CR/LF translation; bytes pass as they are.
    let mut termios = tcgetattr(&pty.slave)?;
    cfmakeraw(&mut termios);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &termios)?;
    let path = nix::unistd::ttyname(&pty.slave)?;
    let path = path
        .to_str()
        .ok_or_else(|| io::Error::other(format!("pty path {path:?} is not UTF-8")))?
        .to_owned();
    let flags = OFlag::from_bits_truncate(fcntl(&pty.master, FcntlArg::F_GETFL)?);
    fcntl(&pty.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    // Tokio 1.54 deprecates the safe `AsyncFd::new` for the `unsafe fn register`, because a
    // `T` whose `AsRawFd` does not own the descriptor could close it while registered
    // (tokio-rs/tokio#8587). `OwnedFd` owns it and `AsyncFd` deregisters before dropping it,
    // so `register`'s contract holds here, and the workspace forbids unsafe code.
    #[allow(deprecated)]
    let master = AsyncFd::new(pty.master)?;
    Ok((
        PtyMaster {
            master,
            _slave: pty.slave,
        },
        path,
    ))
}

impl AsyncRead for PtyMaster {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.master.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(
                |fd| match nix::unistd::read(fd.get_ref().as_fd(), unfilled) {
                    Ok(n) => Ok(n),
                    // Linux reports a hung-up slave as EIO: the end of the stream.
                    Err(Errno::EIO) => Ok(0),
                    Err(errno) => Err(io::Error::from(errno)),
                },
            ) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(error)) => return Poll::Ready(Err(error)),
                Err(_would_block) => {}
            }
        }
    }
}

impl AsyncWrite for PtyMaster {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.master.poll_write_ready(cx))?;
            match guard
                .try_io(|fd| nix::unistd::write(fd.get_ref().as_fd(), buf).map_err(io::Error::from))
            {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => {}
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
