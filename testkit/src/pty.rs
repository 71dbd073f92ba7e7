//! A pseudo-terminal, for tests of what a program writes to a terminal:
//! a child gets the terminal side as its stdout (so it sees a terminal,
//! `isatty(1)`), and the test reads the bytes it wrote, exactly, from the
//! controlling side. The terminal is in raw mode, so its line discipline
//! adds nothing (no CR before each LF) and takes nothing away.

use std::fs::File;
use std::io::Read;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{OptionalActions, tcgetattr, tcsetattr};

/// A new pseudo-terminal: hand [`Pty::stdio`] to children, then read with
/// [`Pty::reader`].
pub struct Pty {
    /// The side a program writes to, as if to a terminal.
    terminal: File,
    /// The side a terminal emulator would read.
    controller: File,
}

impl Pty {
    pub fn open() -> Pty {
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let controller = openpt(flags).expect("openpt");
        grantpt(&controller).expect("grantpt");
        unlockpt(&controller).expect("unlockpt");
        let name = ptsname(&controller, Vec::new()).expect("ptsname");
        // NOCTTY: the test process must not adopt it as its own terminal.
        let terminal = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("open the terminal side");
        let mut mode = tcgetattr(&terminal).expect("tcgetattr");
        mode.make_raw();
        tcsetattr(&terminal, OptionalActions::Now, &mode).expect("tcsetattr");
        Pty {
            terminal: File::from(terminal),
            controller: File::from(controller),
        }
    }

    /// The terminal, for a child's stdout (or stderr).
    pub fn stdio(&self) -> Stdio {
        Stdio::from(self.terminal.try_clone().expect("dup the terminal side"))
    }

    /// Starts reading what is written to the terminal. Closes this
    /// process's own handle on the terminal side, so the reading ends
    /// once every child that has it has exited.
    pub fn reader(self) -> PtyReader {
        let Pty {
            terminal,
            mut controller,
        } = self;
        drop(terminal);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match controller.read(&mut buf) {
                    Ok(n @ 1..) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // Linux answers EIO, not 0, once the last writer has
                    // closed the terminal side.
                    Ok(0) | Err(_) => return,
                }
            }
        });
        PtyReader {
            chunks: rx,
            bytes: Vec::new(),
            ended: false,
        }
    }
}

/// What the programs on a [`Pty`] wrote, as it comes.
pub struct PtyReader {
    chunks: mpsc::Receiver<Vec<u8>>,
    /// Everything read so far.
    pub bytes: Vec<u8>,
    ended: bool,
}

impl PtyReader {
    /// Reads until `done` holds for everything read so far; panics, with
    /// what was read, if it does not within `limit`. Blocks the thread.
    pub fn read_until(&mut self, limit: Duration, done: impl Fn(&[u8]) -> bool) -> &[u8] {
        let deadline = Instant::now() + limit;
        while !done(&self.bytes) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.bytes.extend_from_slice(&chunk),
                Err(e) => panic!(
                    "the terminal: not what was awaited within {limit:?} ({e}); it got {:?}",
                    String::from_utf8_lossy(&self.bytes)
                ),
            }
        }
        &self.bytes
    }

    /// Reads until every writer has closed the terminal (at most `limit`);
    /// everything written.
    pub fn read_to_end(&mut self, limit: Duration) -> &[u8] {
        let deadline = Instant::now() + limit;
        while !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.bytes.extend_from_slice(&chunk),
                Err(mpsc::RecvTimeoutError::Disconnected) => self.ended = true,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "the terminal: still open after {limit:?}; it got {:?}",
                    String::from_utf8_lossy(&self.bytes)
                ),
            }
        }
        &self.bytes
    }
}
