//! A bound listening socket that a configuration reload can move to another address while its
//! accept loop runs.
//!
//! The reload binds the new address itself (so a bad address is refused before anything
//! changes) and hands the socket over with [`Rebind::replace`]; the accept loop takes it at its
//! next [`Listener::accept`] and drops the old socket, which stops listening on the old address.
//! Connections already accepted are sockets of their own and carry on untouched.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The accept loop's side: a listening socket, replaced when a [`Rebind`] sends another.
#[derive(Debug)]
pub struct Listener {
    socket: TcpListener,
    replacements: mpsc::UnboundedReceiver<TcpListener>,
    /// The address the loop listens on now, shared with the [`Rebind`] handles.
    addr: Arc<Mutex<SocketAddr>>,
    name: &'static str,
}

/// The reload's side of a [`Listener`]: moves it to another socket. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Rebind {
    replacements: mpsc::UnboundedSender<TcpListener>,
    addr: Arc<Mutex<SocketAddr>>,
}

impl Listener {
    /// Wraps `socket`; `name` ("RTMP", "HTTPS") names the listener in the line logged when it
    /// moves.
    pub fn new(name: &'static str, socket: TcpListener) -> (Listener, Rebind) {
        let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
        let addr = Arc::new(Mutex::new(socket.local_addr().unwrap_or(unknown)));
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = Listener {
            socket,
            replacements: rx,
            addr: Arc::clone(&addr),
            name,
        };
        let rebind = Rebind {
            replacements: tx,
            addr,
        };
        (listener, rebind)
    }

    /// The next connection. A replacement socket sent meanwhile is taken first, and the old one
    /// closed. Cancel-safe, like [`TcpListener::accept`].
    pub async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            tokio::select! {
                biased;
                Some(next) = self.replacements.recv() => self.take(next),
                accepted = self.socket.accept() => return accepted,
            }
        }
    }

    /// The address listened on now.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn take(&mut self, next: TcpListener) {
        let old = self.socket.local_addr().ok();
        let new = next.local_addr().ok();
        // Dropping the old socket closes it: the old address refuses connections from now on.
        self.socket = next;
        tracing::info!(
            listener = %self.name,
            old = old.map(tracing::field::display),
            new = new.map(tracing::field::display),
            "listener moved"
        );
        if let Some(new) = new {
            *lock(&self.addr) = new;
        }
    }
}

impl Rebind {
    /// Hands `socket` (already bound and listening) to the accept loop. Returns it back when the
    /// loop has stopped.
    pub fn replace(&self, socket: TcpListener) -> Result<(), TcpListener> {
        let addr = socket.local_addr().ok();
        self.replacements.send(socket).map_err(|e| e.0)?;
        // Said at once, so a second reload compares against the address just asked for.
        if let Some(addr) = addr {
            *lock(&self.addr) = addr;
        }
        Ok(())
    }

    /// The address the listener is on (or has just been asked to move to).
    pub fn addr(&self) -> SocketAddr {
        *lock(&self.addr)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_moved_listener_accepts_on_the_new_address_only_and_keeps_its_connections() {
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (mut listener, rebind) = Listener::new("test", first);
        let old = rebind.addr();
        let mut kept = TcpStream::connect(old).await.unwrap();
        let (mut accepted, _) = listener.accept().await.unwrap();

        let second = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let new = second.local_addr().unwrap();
        rebind.replace(second).unwrap();
        assert_eq!(rebind.addr(), new);
        let dial = tokio::spawn(async move { TcpStream::connect(new).await });
        let (_, peer) = listener.accept().await.unwrap();
        let client = dial.await.unwrap().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(listener.local_addr().unwrap(), new);
        assert!(
            TcpStream::connect(old).await.is_err(),
            "the old address is closed"
        );

        // The connection accepted before the move still works both ways.
        kept.write_all(b"x").await.unwrap();
        accepted.write_all(b"y").await.unwrap();
        let mut byte = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut accepted, &mut byte)
            .await
            .unwrap();
        assert_eq!(&byte, b"x");
    }

    #[tokio::test]
    async fn a_stopped_loop_hands_the_socket_back() {
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (listener, rebind) = Listener::new("test", first);
        drop(listener);
        let second = TcpListener::bind("127.0.0.1:0").await.unwrap();
        assert!(rebind.replace(second).is_err());
    }
}
