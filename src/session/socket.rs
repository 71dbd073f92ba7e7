//! A handle on a subscriber's TCP socket, to drop a connection that actix
//! itself cannot drop.
//!
//! actix polls a response body only while its write buffer has room, so a
//! client that stops reading (its receive window zero) leaves the body
//! unpolled for as long as it likes: a session cannot end its stream by
//! returning an error then. A session that must be rid of such a client
//! (after an abort whose close frame the client did not take) resets the
//! socket instead: linger 0, then shutdown, so the kernel answers with RST,
//! frees its buffers, and actix sees the socket fail. The handle is a
//! duplicate of actix's descriptor owned by the session; it is dropped with
//! the session, moments after actix drops its own.
//!
//! It also tells whether the client is still reading: on Linux the
//! kernel counts the bytes the peer acknowledged, which stands still while
//! the peer's receive window is shut.

/// The raw descriptor of a connection, recorded by the server's
/// `on_connect` hook into the connection's data.
#[derive(Debug, Clone, Copy)]
pub struct ConnFd(#[cfg(unix)] pub std::os::fd::RawFd);

/// Records the descriptor of a new connection; the server's `on_connect`.
pub fn on_connect(conn: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    #[cfg(unix)]
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        use std::os::fd::AsRawFd;
        data.insert(ConnFd(tcp.as_raw_fd()));
    }
    #[cfg(not(unix))]
    let _ = (conn, data);
}

/// A session's own handle on its client's socket.
#[derive(Debug)]
pub struct SocketHandle(#[cfg(unix)] socket2::Socket);

impl SocketHandle {
    /// Duplicates the descriptor of the connection serving `req`.
    pub fn of(req: &actix_web::HttpRequest) -> Option<SocketHandle> {
        #[cfg(unix)]
        {
            let fd = req.conn_data::<ConnFd>()?.0;
            // SAFETY: `fd` is the descriptor of the connection this request
            // arrived on, recorded when it was accepted. The connection is
            // open while its request is being handled (actix drops a
            // handler together with its connection), so the descriptor is
            // valid for this borrow, which ends with the `dup` below.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let owned = borrowed.try_clone_to_owned().ok()?;
            Some(SocketHandle(socket2::Socket::from(owned)))
        }
        #[cfg(not(unix))]
        {
            let _ = req;
            None
        }
    }

    /// The bytes of this connection the peer has acknowledged so far
    /// (Linux's `TCP_INFO`): it grows while the client reads and stands
    /// still while it does not, however much the kernel still buffers for
    /// it. `None` where the kernel cannot say.
    pub fn bytes_acked(&self) -> Option<u64> {
        #[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
        {
            use std::os::fd::AsRawFd;
            let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
            let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
            // SAFETY: the descriptor is this handle's own (a duplicate) and
            // open while `self` lives; `info` is a writable buffer of `len`
            // bytes, of which the kernel fills at most `len` and says how
            // many in `len`.
            let rc = unsafe {
                libc::getsockopt(
                    self.0.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_INFO,
                    info.as_mut_ptr().cast(),
                    &mut len,
                )
            };
            // An older kernel fills a shorter struct, without the field.
            let end =
                std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + std::mem::size_of::<u64>();
            if rc != 0 || (len as usize) < end {
                return None;
            }
            // SAFETY: zeroed, then partly written by the kernel; every
            // field is a plain integer, for which any bytes are valid.
            let info = unsafe { info.assume_init() };
            Some(info.tcpi_bytes_acked)
        }
        #[cfg(not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl"))))]
        {
            None
        }
    }

    /// Resets the connection: no more reads or writes, buffers discarded.
    pub fn reset(&self) {
        #[cfg(unix)]
        {
            let _ = self.0.set_linger(Some(std::time::Duration::ZERO));
            let _ = self.0.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SocketHandle;

    /// Over a real loopback connection: the count follows what the peer
    /// took, and stands still while the peer's window is shut.
    #[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
    #[test]
    fn acknowledged_bytes_follow_the_peer() {
        use std::io::{Read, Write};
        use std::time::{Duration, Instant};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        client
            .connect(&listener.local_addr().unwrap().into())
            .unwrap();
        let mut client = std::net::TcpStream::from(client);
        let (mut server, _) = listener.accept().unwrap();
        let handle = SocketHandle(socket2::Socket::from(server.try_clone().unwrap()));
        let start = handle.bytes_acked().expect("TCP_INFO on Linux");

        // Acknowledged as soon as it is in the peer's buffer.
        server.write_all(&[7u8; 1000]).unwrap();
        let wait_for = |want: u64| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let acked = handle.bytes_acked().unwrap() - start;
                if acked >= want || Instant::now() > deadline {
                    return acked;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        assert_eq!(wait_for(1000), 1000);

        // A peer that does not read: its window shuts, the count stops.
        server.set_nonblocking(true).unwrap();
        let chunk = [1u8; 65536];
        while server.write(&chunk).is_ok() {}
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = handle.bytes_acked().unwrap();
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let now = handle.bytes_acked().unwrap();
            if now == last {
                break;
            }
            last = now;
            assert!(Instant::now() < deadline, "the count never settled");
        }
        // Reading moves it again.
        let mut buf = vec![0u8; 64 * 1024];
        client.read_exact(&mut buf[..1000 + 4096]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while handle.bytes_acked().unwrap() == last {
            assert!(Instant::now() < deadline, "reading did not move the count");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
