//! A minimal HTTP/1.1 client for OTLP/HTTP: `POST` of one body to one
//! `http://` URL, over one kept-alive TCP connection.
//!
//! A request is `POST <path> HTTP/1.1` with `Host`, `User-Agent`,
//! `Content-Type: application/x-protobuf`, any configured headers and
//! `Content-Length`, then the body. The answer's status line and headers are
//! read (at most 16 KiB), then its body by `Content-Length`, by chunks
//! (`Transfer-Encoding: chunked`, trailers skipped) or until the collector
//! closes the connection (at most 1 MiB). Interim `1xx` answers are skipped.
//!
//! The connection is kept for the next request unless the answer says
//! `Connection: close`, is HTTP/1.0 without `keep-alive`, ran to the end of
//! the stream, or anything failed. A kept connection the collector has closed
//! meanwhile (idle timeout) is noticed before reuse; if a reused connection
//! still fails before any byte of an answer arrives, the request is sent once
//! more on a new connection. Connecting gives up after 1 s; the caller bounds
//! the whole request (dropping the future drops the connection).

use std::io::{self, Write as _};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::CONNECT_TIMEOUT;

/// The status line and headers of an answer, at most.
const MAX_HEAD: usize = 16 * 1024;
/// An answer's body, at most.
const MAX_BODY: usize = 1024 * 1024;

/// Where requests go: an `http://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Endpoint {
    /// The URL as given, `http://` added if it had no scheme.
    pub(super) url: String,
    /// Host to connect to (an IPv6 address without its brackets).
    host: String,
    port: u16,
    /// `host[:port]` as in the URL, for `Host`.
    authority: String,
    /// Path and query, `/` if the URL has none.
    target: String,
}

impl Endpoint {
    /// Parses `endpoint`; the error says what is wrong with it.
    pub(super) fn parse(endpoint: &str) -> Result<Endpoint, String> {
        let trimmed = endpoint.trim();
        if trimmed.is_empty() {
            return Err("it is empty".to_owned());
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("it contains a space or a control character".to_owned());
        }
        let (url, rest) = match trimmed.split_once("://") {
            None => (format!("http://{trimmed}"), trimmed),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (trimmed.to_owned(), rest),
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(
                    "TLS is not supported: use an http:// endpoint (a collector on the host)".to_owned(),
                );
            }
            Some((scheme, _)) => return Err(format!("unsupported scheme '{scheme}': use http://")),
        };
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        let target = match target {
            "" => "/".to_owned(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_owned(),
        };
        if authority.contains('@') {
            return Err(
                "credentials in the URL are not supported: set OTEL_EXPORTER_OTLP_HEADERS".to_owned(),
            );
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| "an IPv6 address lacks its ']'".to_owned())?;
                if !host
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
                {
                    return Err(format!("invalid IPv6 address '{host}'"));
                }
                match after {
                    "" => (host, None),
                    after => (host, Some(after.strip_prefix(':').ok_or("junk after ']'")?)),
                }
            }
            None => match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err("it has no host".to_owned());
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
        {
            return Err(format!("invalid host '{host}'"));
        }
        let port = match port {
            None => 80,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("invalid port '{port}'"))?,
        };
        Ok(Endpoint {
            url,
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            target,
        })
    }
}

/// `endpoint` with any `user:password@` replaced, for messages.
pub(super) fn redacted(endpoint: &str) -> String {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("", endpoint));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let scheme = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{scheme}***{}", &rest[at..])
        }
        None => endpoint.to_owned(),
    }
}

/// A request that did not get an answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum HttpError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("cannot connect to {addr}: no answer within {CONNECT_TIMEOUT:?}")]
    ConnectTimeout { addr: String },
    #[error("cannot send the request: {0}")]
    Send(io::Error),
    #[error("no answer: {0}")]
    NoAnswer(String),
    #[error("cannot read the answer: {0}")]
    Receive(io::Error),
    #[error("the answer ended early")]
    Truncated,
    #[error("malformed HTTP answer: {0}")]
    Malformed(&'static str),
}

/// An answer.
#[derive(Debug, PartialEq)]
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) reason: String,
    pub(super) content_type: Option<String>,
    pub(super) body: Vec<u8>,
}

impl Response {
    pub(super) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// POSTs bodies to one endpoint over a kept-alive connection.
#[derive(Debug)]
pub(super) struct Client {
    endpoint: Endpoint,
    /// The request head up to, not including, `Content-Length`.
    head: String,
    conn: Option<TcpStream>,
}

impl Client {
    /// A client for `endpoint` sending `headers` (names and values already
    /// checked: no CR, LF or colon in names) with every request.
    pub(super) fn new(endpoint: Endpoint, headers: &[(String, String)]) -> Client {
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: modvirt/{}\r\nContent-Type: application/x-protobuf\r\n",
            endpoint.target,
            endpoint.authority,
            env!("CARGO_PKG_VERSION"),
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        Client {
            endpoint,
            head,
            conn: None,
        }
    }

    /// Sends `body` and reads the answer, whatever its status.
    pub(super) async fn post(&mut self, body: &[u8]) -> Result<Response, HttpError> {
        let mut request = Vec::with_capacity(self.head.len() + 32 + body.len());
        request.extend_from_slice(self.head.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = write!(request, "Content-Length: {}\r\n\r\n", body.len());
        request.extend_from_slice(body);
        if let Some(conn) = self.conn.take().filter(still_open) {
            match exchange(conn, &request).await {
                // Closed by the collector before it read the request: again on a new one.
                Err(HttpError::Send(_) | HttpError::NoAnswer(_)) => {}
                outcome => return self.keep(outcome),
            }
        }
        let conn = self.connect().await?;
        self.keep(exchange(conn, &request).await)
    }

    fn keep(
        &mut self,
        outcome: Result<(Response, Option<TcpStream>), HttpError>,
    ) -> Result<Response, HttpError> {
        let (response, conn) = outcome?;
        self.conn = conn;
        Ok(response)
    }

    async fn connect(&self) -> Result<TcpStream, HttpError> {
        let addr = || self.endpoint.authority.clone();
        let connect = TcpStream::connect((self.endpoint.host.as_str(), self.endpoint.port));
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| HttpError::ConnectTimeout { addr: addr() })?
            .map_err(|source| HttpError::Connect { addr: addr(), source })?;
        // The request goes out in one write: nothing to coalesce.
        let _ = conn.set_nodelay(true);
        Ok(conn)
    }
}

/// Whether a kept connection is still usable: nothing to read, not closed.
fn still_open(conn: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(conn.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Sends `request` on `conn`; the answer, and the connection if it may be reused.
async fn exchange(mut conn: TcpStream, request: &[u8]) -> Result<(Response, Option<TcpStream>), HttpError> {
    conn.write_all(request).await.map_err(HttpError::Send)?;
    let (response, reusable) = read_response(&mut conn).await?;
    Ok((response, reusable.then_some(conn)))
}

/// Buffered input that knows whether any byte arrived.
struct Input<'a, R> {
    reader: &'a mut R,
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    pos: usize,
    received: bool,
}

impl<R: AsyncRead + Unpin> Input<'_, R> {
    fn unread(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more; false at the end of the stream.
    async fn fill(&mut self) -> Result<bool, HttpError> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.reserve(8192);
        match self.reader.read_buf(&mut self.buf).await {
            Ok(0) => Ok(false),
            Ok(_) => {
                self.received = true;
                Ok(true)
            }
            Err(e) if !self.received => Err(HttpError::NoAnswer(e.to_string())),
            Err(e) => Err(HttpError::Receive(e)),
        }
    }

    /// The end of the stream came before the answer was complete.
    fn ended(&self) -> HttpError {
        if self.received {
            HttpError::Truncated
        } else {
            HttpError::NoAnswer("the collector closed the connection".to_owned())
        }
    }

    /// The next line without its CRLF (or LF), taking at most `*budget` bytes.
    async fn line(&mut self, budget: &mut usize, too_long: &'static str) -> Result<Vec<u8>, HttpError> {
        let mut scanned = 0;
        loop {
            let newline = self.unread()[scanned..].iter().position(|&b| b == b'\n');
            if let Some(end) = newline.map(|at| scanned + at) {
                if end + 1 > *budget {
                    return Err(HttpError::Malformed(too_long));
                }
                *budget -= end + 1;
                let line = &self.unread()[..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
                self.pos += end + 1;
                return Ok(line);
            }
            scanned = self.unread().len();
            if scanned >= *budget {
                return Err(HttpError::Malformed(too_long));
            }
            if !self.fill().await? {
                return Err(self.ended());
            }
        }
    }

    /// Appends the next `n` bytes to `out`.
    async fn exact(&mut self, mut n: usize, out: &mut Vec<u8>) -> Result<(), HttpError> {
        loop {
            let take = n.min(self.unread().len());
            out.extend_from_slice(&self.unread()[..take]);
            self.pos += take;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            if !self.fill().await? {
                return Err(self.ended());
            }
        }
    }

    /// Appends everything up to the end of the stream to `out`.
    async fn until_end(&mut self, out: &mut Vec<u8>) -> Result<(), HttpError> {
        loop {
            out.extend_from_slice(self.unread());
            self.pos = self.buf.len();
            if out.len() > MAX_BODY {
                return Err(HttpError::Malformed("the body is larger than 1 MiB"));
            }
            if !self.fill().await? {
                return Ok(());
            }
        }
    }
}

/// What the status line and headers say.
#[derive(Debug)]
struct Head {
    status: u16,
    reason: String,
    content_type: Option<String>,
    content_length: Option<usize>,
    chunked: bool,
    keep_alive: bool,
}

async fn read_head<R: AsyncRead + Unpin>(input: &mut Input<'_, R>) -> Result<Head, HttpError> {
    const TOO_LONG: &str = "the status line and headers exceed 16 KiB";
    let mut budget = MAX_HEAD;
    let line = input.line(&mut budget, TOO_LONG).await?;
    let line = std::str::from_utf8(&line).map_err(|_| HttpError::Malformed("the status line is not text"))?;
    let mut parts = line.splitn(3, ' ');
    let keep_alive = match parts.next() {
        Some("HTTP/1.1") => true,
        Some("HTTP/1.0") => false,
        _ => return Err(HttpError::Malformed("no HTTP/1.x status line")),
    };
    let status = parts
        .next()
        .filter(|code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|code| code.parse().ok())
        .filter(|code| (100..600).contains(code))
        .ok_or(HttpError::Malformed("no status code"))?;
    let mut head = Head {
        status,
        reason: parts.next().unwrap_or_default().trim().to_owned(),
        content_type: None,
        content_length: None,
        chunked: false,
        keep_alive,
    };
    loop {
        let line = input.line(&mut budget, TOO_LONG).await?;
        if line.is_empty() {
            return Ok(head);
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(HttpError::Malformed("a header line without ':'"));
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| b.is_ascii_graphic()) {
            return Err(HttpError::Malformed("an invalid header name"));
        }
        let value = String::from_utf8_lossy(&line[colon + 1..]).trim().to_owned();
        match name.to_ascii_lowercase().as_slice() {
            b"content-length" => {
                let length = value
                    .parse::<usize>()
                    .ok()
                    .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or(HttpError::Malformed("an invalid Content-Length"))?;
                if head.content_length.is_some_and(|l| l != length) {
                    return Err(HttpError::Malformed("conflicting Content-Length headers"));
                }
                head.content_length = Some(length);
            }
            b"transfer-encoding" => {
                let last = value.rsplit(',').next().unwrap_or_default().trim();
                if !last.eq_ignore_ascii_case("chunked") {
                    return Err(HttpError::Malformed("an unsupported Transfer-Encoding"));
                }
                head.chunked = true;
            }
            b"connection" => {
                for option in value.split(',').map(str::trim) {
                    if option.eq_ignore_ascii_case("close") {
                        head.keep_alive = false;
                    } else if option.eq_ignore_ascii_case("keep-alive") {
                        head.keep_alive = true;
                    }
                }
            }
            b"content-type" => head.content_type = Some(value),
            _ => {}
        }
    }
}

/// Reads a chunked body into `out`.
async fn read_chunks<R: AsyncRead + Unpin>(
    input: &mut Input<'_, R>,
    out: &mut Vec<u8>,
) -> Result<(), HttpError> {
    loop {
        let line = input.line(&mut 1024, "a chunk size line is too long").await?;
        let line = String::from_utf8_lossy(&line);
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .ok()
            .filter(|_| !size.is_empty() && !size.starts_with('+'))
            .ok_or(HttpError::Malformed("an invalid chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            let mut budget = MAX_HEAD;
            while !input
                .line(&mut budget, "the trailers exceed 16 KiB")
                .await?
                .is_empty()
            {}
            return Ok(());
        }
        if out.len().saturating_add(size) > MAX_BODY {
            return Err(HttpError::Malformed("the body is larger than 1 MiB"));
        }
        input.exact(size, out).await?;
        if !input
            .line(&mut 2, "a chunk is longer than its size")
            .await?
            .is_empty()
        {
            return Err(HttpError::Malformed("a chunk is longer than its size"));
        }
    }
}

/// Reads one answer (after any interim `1xx` ones); the answer and whether
/// the connection may carry another request.
async fn read_response<R: AsyncRead + Unpin>(reader: &mut R) -> Result<(Response, bool), HttpError> {
    let mut input = Input {
        reader,
        buf: Vec::new(),
        pos: 0,
        received: false,
    };
    loop {
        let head = read_head(&mut input).await?;
        match head.status {
            101 => return Err(HttpError::Malformed("an unexpected 101 Switching Protocols")),
            100..=199 => continue,
            _ => {}
        }
        let mut body = Vec::new();
        let delimited = if head.status == 204 || head.status == 304 {
            true
        } else if head.chunked {
            read_chunks(&mut input, &mut body).await?;
            true
        } else if let Some(length) = head.content_length {
            if length > MAX_BODY {
                return Err(HttpError::Malformed("the body is larger than 1 MiB"));
            }
            input.exact(length, &mut body).await?;
            true
        } else {
            input.until_end(&mut body).await?;
            false
        };
        // Bytes after the answer: the stream is out of step.
        let reusable = head.keep_alive && delimited && input.unread().is_empty();
        let response = Response {
            status: head.status,
            reason: head.reason,
            content_type: head.content_type,
            body,
        };
        return Ok((response, reusable));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;
    use tokio::net::TcpListener;

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    /// Gives its bytes one at a time, to cut every token in two.
    struct Trickle<'a>(&'a [u8]);

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some((&first, rest)) = self.0.split_first() {
                buf.put_slice(&[first]);
                self.0 = rest;
            }
            Poll::Ready(Ok(()))
        }
    }

    fn parse(bytes: &[u8]) -> Result<(Response, bool), HttpError> {
        let whole = block_on(read_response(&mut &bytes[..]));
        let trickled = block_on(read_response(&mut Trickle(bytes)));
        // (Whether bytes follow the answer shows only when they were read.)
        assert_eq!(
            format!("{:?}", whole.as_ref().map(|(response, _)| response)),
            format!("{:?}", trickled.as_ref().map(|(response, _)| response)),
            "read at once or byte by byte"
        );
        whole
    }

    fn ok(bytes: &[u8]) -> (u16, String, bool) {
        match parse(bytes) {
            Ok((r, reusable)) => (r.status, String::from_utf8_lossy(&r.body).into_owned(), reusable),
            Err(e) => panic!("{:?}: {e}", String::from_utf8_lossy(bytes)),
        }
    }

    #[test]
    fn bodies_by_content_length() {
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (200, String::new(), true)
        );
        let (response, _) = parse(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\nContent-Length:  5 \r\n\r\nhello",
        )
        .expect("answer");
        assert_eq!(response.body, b"hello");
        assert_eq!(response.reason, "OK");
        assert_eq!(response.content_type.as_deref(), Some("application/x-protobuf"));
        assert!(response.is_success());
        // Bare LFs, HTTP/1.0, Connection: close.
        assert_eq!(
            ok(b"HTTP/1.0 202 Accepted\nContent-Length: 2\n\nok"),
            (202, "ok".into(), false)
        );
        assert_eq!(
            ok(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"),
            (200, String::new(), true)
        );
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
            (200, String::new(), false)
        );
        // Bytes after the answer: not reusable.
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1"),
            (200, "x".into(), false)
        );
    }

    #[test]
    fn chunked_bodies_until_close_and_interim_answers() {
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: 1\r\n\r\n"),
            (200, "hello, world!!!".into(), true)
        );
        // Chunked wins over Content-Length.
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
            (200, String::new(), true)
        );
        assert_eq!(
            ok(b"HTTP/1.1 500 Internal Server Error\r\n\r\nboom\n"),
            (500, "boom\n".into(), false)
        );
        assert_eq!(
            ok(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
            (204, String::new(), true)
        );
        let (response, _) =
            parse(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy").expect("answer");
        assert_eq!(
            (response.status, response.reason.as_str()),
            (503, "Service Unavailable")
        );
        assert!(!response.is_success());
    }

    #[test]
    fn garbage_is_refused() {
        let malformed = |bytes: &[u8]| matches!(parse(bytes), Err(HttpError::Malformed(_)));
        for garbage in [
            &b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..],
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 OK\r\n\r\n",
            b"\x00\x00\x12\x04\x00\x00\x00\x00\x00\n\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n : x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ] {
            assert!(
                malformed(garbage),
                "{:?} was accepted",
                String::from_utf8_lossy(garbage)
            );
        }
        let huge_header = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "y".repeat(MAX_HEAD));
        assert!(malformed(huge_header.as_bytes()));
        assert!(matches!(parse(b""), Err(HttpError::NoAnswer(_))));
        for truncated in [
            &b"HTTP/1.1 200"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ] {
            assert!(matches!(parse(truncated), Err(HttpError::Truncated)));
        }
    }

    #[test]
    fn endpoints_are_http_urls_with_a_host() {
        let parse = |e: &str| Endpoint::parse(e).map(|e| (e.url, e.host, e.port, e.authority, e.target));
        let ok = |url: &str, host: &str, port, authority: &str, target: &str| {
            Ok((url.into(), host.into(), port, authority.into(), target.into()))
        };
        assert_eq!(
            parse("localhost:4318"),
            ok("http://localhost:4318", "localhost", 4318, "localhost:4318", "/")
        );
        assert_eq!(
            parse(" HTTP://127.0.0.1:4318/v1/traces "),
            ok(
                "HTTP://127.0.0.1:4318/v1/traces",
                "127.0.0.1",
                4318,
                "127.0.0.1:4318",
                "/v1/traces"
            )
        );
        assert_eq!(
            parse("http://[::1]:4318/otlp/v1/traces?x=1#frag"),
            ok(
                "http://[::1]:4318/otlp/v1/traces?x=1#frag",
                "::1",
                4318,
                "[::1]:4318",
                "/otlp/v1/traces?x=1"
            )
        );
        assert_eq!(
            parse("http://collector?x"),
            ok("http://collector?x", "collector", 80, "collector", "/?x")
        );
        for bad in [
            "",
            "https://collector:4318",
            "unix:///run/otel.sock",
            "http://",
            "http://:4318/v1/traces",
            "http://a b",
            "http://user:secret@collector:4318",
            "http://collector:0",
            "http://collector:65536",
            "http://collector:+80",
            "http://[::1:4318",
            "http://[::1]x",
            "http://a/b\r\nX-Injected: 1",
            "http://coll%65ctor",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            redacted("http://user:secret@collector:4318/v1/traces"),
            "http://***@collector:4318/v1/traces"
        );
        assert_eq!(redacted("u:p@host"), "***@host");
        assert_eq!(redacted("http://host/a@b"), "http://host/a@b");
        let tls = Endpoint::parse("https://collector:4318")
            .err()
            .unwrap_or_default();
        assert!(tls.contains("TLS is not supported"), "{tls}");
    }

    /// A server that answers each connection's requests with `answers` in turn,
    /// then closes it; returns its endpoint.
    async fn server(connections: Vec<Vec<&'static [u8]>>) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            for answers in connections {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                for answer in answers {
                    let mut request = vec![0u8; 4096];
                    // Requests are small here: one read holds one.
                    if conn.read(&mut request).await.unwrap_or(0) == 0 {
                        break;
                    }
                    let _ = conn.write_all(answer).await;
                }
            }
        });
        Endpoint::parse(&format!("http://{addr}/v1/traces")).expect("endpoint")
    }

    #[test]
    fn one_connection_is_kept_and_replaced_when_closed() {
        block_on(async {
            const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
            let endpoint = server(vec![vec![OK, OK], vec![OK]]).await;
            let mut client = Client::new(endpoint, &[("Authorization".into(), "Bearer x".into())]);
            for _ in 0..2 {
                let response = client.post(b"body").await.expect("answer");
                assert_eq!(response.status, 200);
                assert!(client.conn.is_some(), "kept alive");
            }
            // The server has closed the first connection: a new one is used.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            assert_eq!(client.post(b"body").await.map(|r| r.status).ok(), Some(200));
            // Nobody listens any more.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            assert!(matches!(
                client.post(b"body").await,
                Err(HttpError::Connect { .. })
            ));
        });
    }

    #[test]
    fn requests_carry_host_type_length_and_headers() {
        let client = Client::new(
            Endpoint::parse("http://[::1]:4318/v1/traces").expect("endpoint"),
            &[("x-tenant".into(), "a b".into())],
        );
        assert_eq!(
            client.head,
            format!(
                "POST /v1/traces HTTP/1.1\r\nHost: [::1]:4318\r\nUser-Agent: modvirt/{}\r\n\
                 Content-Type: application/x-protobuf\r\nx-tenant: a b\r\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
