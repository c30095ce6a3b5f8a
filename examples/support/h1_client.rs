//! A minimal HTTP/1.1 keep-alive client for the load generator: one connection, requests that
//! were fully encoded before the clock started, responses framed by `Content-Length`.
//!
//! A general client (reqwest) costs the shared machine ~40 µs of CPU per request, a quarter of
//! what the broker spends on an exchange; on two cores shared by broker, Redis and generator
//! that skews every figure measured. This one does a write, a read and a header parse.
//! Plain `http://` only, no chunked bodies, no redirects: it talks to a broker next to it.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `POST path` with a form body, as the exact bytes to send.
pub fn post_form(host: &str, path: &str, content_type: &str, body: &str) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nAccept: application/json\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    request
}

/// One keep-alive connection. After an error or `Connection: close`, the next request
/// reconnects.
pub struct Connection {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Connection {
    pub fn new(addr: &str) -> Connection {
        Connection {
            addr: addr.to_string(),
            stream: None,
            buf: Vec::with_capacity(8192),
        }
    }

    /// Sends `request` and reads the whole response; returns its status code.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<u16> {
        let result = self.round_trip(request).await;
        if !matches!(result, Ok((_, true))) {
            self.stream = None;
        }
        result.map(|(status, _)| status)
    }

    /// `(status, keep the connection)`.
    async fn round_trip(&mut self, request: &[u8]) -> io::Result<(u16, bool)> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(&self.addr).await?;
                stream.set_nodelay(true)?;
                self.stream.insert(stream)
            }
        };
        stream.write_all(request).await?;
        self.buf.clear();
        loop {
            if let Some(framed) = parse(&self.buf)? {
                while self.buf.len() < framed.total {
                    read_more(stream, &mut self.buf).await?;
                }
                return Ok((framed.status, framed.keep_alive));
            }
            read_more(stream, &mut self.buf).await?;
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.reserve(4096);
    if stream.read_buf(buf).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-response",
        ));
    }
    Ok(())
}

struct Framed {
    status: u16,
    /// Header and body length.
    total: usize,
    keep_alive: bool,
}

/// `None` until the header is complete.
fn parse(buf: &[u8]) -> io::Result<Option<Framed>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let header_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(&format!("bad response: {e}"))),
    };
    let mut length = None;
    let mut keep_alive = true;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value).map_err(|_| invalid("content-length"))?;
            length = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| invalid("content-length"))?,
            );
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(invalid("chunked responses are not supported"));
        } else if header.name.eq_ignore_ascii_case("connection") {
            keep_alive = !header.value.eq_ignore_ascii_case(b"close");
        }
    }
    Ok(Some(Framed {
        status: response.code.ok_or_else(|| invalid("no status"))?,
        total: header_len + length.ok_or_else(|| invalid("no content-length"))?,
        keep_alive,
    }))
}
