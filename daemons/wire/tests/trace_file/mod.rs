//! Reading the libvirt 9.0 trace files in `tests/vectors/` (format in
//! `traces.rs`), plus a flat JSON reader for their `decoded remote_error`
//! lines. Shared by the trace tests; no I/O beyond reading the vectors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One frame as recorded in a trace.
#[derive(Debug)]
pub struct Frame {
    /// `file:line` of the header line, for failure messages.
    pub at: String,
    pub client_to_server: bool,
    pub len: u32,
    pub prog: u32,
    pub prog_name: String,
    pub vers: u32,
    pub proc_: i32,
    pub proc_name: String,
    pub type_: i32,
    pub serial: u32,
    pub status: i32,
    pub plen: usize,
    pub payload: Vec<u8>,
    /// The JSON after `decoded remote_error:`, if the trace has one.
    pub decoded_error: Option<String>,
}

impl Frame {
    /// The whole frame as it was on the wire: length word, header, payload.
    pub fn wire_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(28 + self.payload.len());
        let len = 28 + self.payload.len() as u32;
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&self.prog.to_be_bytes());
        b.extend_from_slice(&self.vers.to_be_bytes());
        b.extend_from_slice(&self.proc_.to_be_bytes());
        b.extend_from_slice(&self.type_.to_be_bytes());
        b.extend_from_slice(&self.serial.to_be_bytes());
        b.extend_from_slice(&self.status.to_be_bytes());
        b.extend_from_slice(&self.payload);
        b
    }
}

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// `123(NAME)` → (123, "NAME"); `0x06900690(ADMIN)` → (0x06900690, "ADMIN").
fn number_and_name(v: &str) -> (i64, String) {
    let (num, rest) = v.split_once('(').unwrap_or((v, ""));
    let name = rest.strip_suffix(')').unwrap_or(rest).to_owned();
    let n = match num.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16),
        None => num.parse(),
    };
    (n.unwrap_or_else(|e| panic!("bad number {v:?}: {e}")), name)
}

fn parse_header(at: String, line: &str) -> Frame {
    let mut f = Frame {
        at,
        client_to_server: line.contains(" C>S "),
        len: 0,
        prog: 0,
        prog_name: String::new(),
        vers: 0,
        proc_: 0,
        proc_name: String::new(),
        type_: 0,
        serial: 0,
        status: 0,
        plen: 0,
        payload: Vec::new(),
        decoded_error: None,
    };
    let mut seen = 0;
    for tok in line.split_whitespace() {
        let Some((k, v)) = tok.split_once('=') else {
            continue;
        };
        const FIELDS: [&str; 8] = ["len", "prog", "vers", "proc", "type", "serial", "status", "plen"];
        if !FIELDS.contains(&k) {
            continue; // t=, conn=
        }
        let (n, name) = number_and_name(v);
        let n32 = || u32::try_from(n).unwrap_or_else(|_| panic!("{}: {k}={v}", f.at));
        match k {
            "len" => f.len = n32(),
            "prog" => (f.prog, f.prog_name) = (n32(), name),
            "vers" => f.vers = n32(),
            "proc" => (f.proc_, f.proc_name) = (n as i32, name),
            "type" => f.type_ = n as i32,
            "serial" => f.serial = n32(),
            "status" => f.status = n as i32,
            _ => f.plen = n as usize,
        }
        seen += 1;
    }
    assert_eq!(seen, 8, "{}: header line lacks fields: {line}", f.at);
    f
}

/// `    000010  00 00 … 00  |…|`: offset (6 hex digits), then 16 byte columns
/// of 3 characters each, then the ASCII column (which may itself hold `|`).
fn parse_hex_line(at: &str, line: &str, payload: &mut Vec<u8>) {
    let offset = usize::from_str_radix(&line[4..10], 16).unwrap();
    assert_eq!(offset, payload.len(), "{at}: hexdump offset out of sequence");
    let columns = &line[12..line.len().min(60)];
    for byte in columns.split_whitespace() {
        payload.push(u8::from_str_radix(byte, 16).unwrap_or_else(|e| panic!("{at}: {byte:?}: {e}")));
    }
}

fn is_hex_line(line: &str) -> bool {
    line.starts_with("    ")
        && line
            .get(4..10)
            .is_some_and(|o| o.bytes().all(|b| b.is_ascii_hexdigit()))
        && line.get(10..13).is_some_and(|gap| gap.starts_with("  "))
}

fn parse_trace(name: &str, text: &str) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = format!("{name}:{}", i + 1);
        if line.starts_with("t=") && (line.contains(" C>S len=") || line.contains(" S>C len=")) {
            frames.push(parse_header(at, line));
        } else if let Some(json) = line.trim_start().strip_prefix("decoded remote_error:") {
            let f = frames
                .last_mut()
                .unwrap_or_else(|| panic!("{at}: error before any frame"));
            f.decoded_error = Some(json.trim().to_owned());
        } else if is_hex_line(line) {
            let f = frames
                .last_mut()
                .unwrap_or_else(|| panic!("{at}: hexdump before any frame"));
            parse_hex_line(&at, line, &mut f.payload);
        }
    }
    for f in &frames {
        assert_eq!(f.payload.len(), f.plen, "{}: plen vs hexdump", f.at);
    }
    frames
}

/// Every frame of every trace file, with the file count.
pub fn all_frames() -> (usize, Vec<Frame>) {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    let mut frames = Vec::new();
    for p in &paths {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        frames.extend(parse_trace(&name, &std::fs::read_to_string(p).unwrap()));
    }
    (paths.len(), frames)
}

// ---------------------------------------------------------------------------
// A flat JSON object reader, enough for the `decoded remote_error` lines
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Num(i64),
    Str(String),
}

struct JsonReader<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonReader<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(
            self.s.get(self.i),
            Some(&c),
            "JSON: expected {:?} at {}",
            c as char,
            self.i
        );
        self.i += 1;
    }

    fn hex4(&mut self) -> u16 {
        let h = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
        self.i += 4;
        u16::from_str_radix(h, 16).unwrap()
    }

    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut units: Vec<u16> = Vec::new();
        let mut out = String::new();
        loop {
            let c = self.s[self.i];
            self.i += 1;
            if c != b'\\' || self.s[self.i] != b'u' {
                out.push_str(&String::from_utf16(&units).unwrap());
                units.clear();
            }
            match c {
                b'"' => return out,
                b'\\' => {
                    let e = self.s[self.i];
                    self.i += 1;
                    match e {
                        b'u' => units.push(self.hex4()),
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        other => out.push(other as char),
                    }
                }
                _ => {
                    // Copy one whole UTF-8 sequence.
                    let start = self.i - 1;
                    while self.s.get(self.i).is_some_and(|b| b & 0xc0 == 0x80) {
                        self.i += 1;
                    }
                    out.push_str(std::str::from_utf8(&self.s[start..self.i]).unwrap());
                }
            }
        }
    }

    fn value(&mut self) -> Json {
        self.ws();
        match self.s[self.i] {
            b'"' => Json::Str(self.string()),
            b'n' => {
                assert_eq!(&self.s[self.i..self.i + 4], b"null");
                self.i += 4;
                Json::Null
            }
            _ => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|b| *b == b'-' || b.is_ascii_digit())
                {
                    self.i += 1;
                }
                let n = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                Json::Num(n.parse().unwrap_or_else(|e| panic!("JSON number {n:?}: {e}")))
            }
        }
    }
}

/// Parses `{"k": v, …}` whose values are strings, integers or null.
pub fn flat_json(s: &str) -> BTreeMap<String, Json> {
    let mut r = JsonReader {
        s: s.as_bytes(),
        i: 0,
    };
    let mut out = BTreeMap::new();
    r.eat(b'{');
    loop {
        let k = r.string();
        r.eat(b':');
        out.insert(k, r.value());
        r.ws();
        match r.s[r.i] {
            b',' => r.i += 1,
            b'}' => return out,
            c => panic!("JSON: unexpected {:?}", c as char),
        }
    }
}

pub fn json_opt_str(v: &Json) -> Option<String> {
    match v {
        Json::Null => None,
        Json::Str(s) => Some(s.clone()),
        Json::Num(n) => panic!("expected a string or null, got {n}"),
    }
}

pub fn json_int(v: &Json) -> i32 {
    match v {
        Json::Num(n) => i32::try_from(*n).unwrap(),
        other => panic!("expected a number, got {other:?}"),
    }
}
