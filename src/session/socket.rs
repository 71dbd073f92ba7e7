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

    /// Resets the connection: no more reads or writes, buffers discarded.
    pub fn reset(&self) {
        #[cfg(unix)]
        {
            let _ = self.0.set_linger(Some(std::time::Duration::ZERO));
            let _ = self.0.shutdown(std::net::Shutdown::Both);
        }
    }
}
