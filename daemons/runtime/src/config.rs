//! Daemon configuration files in libvirt's `virconf` syntax
//! (`/etc/libvirt/virtqemud.conf` and friends).
//!
//! The syntax is a small subset of Python assignments:
//!
//! ```text
//! # a comment
//! max_workers = 20            # trailing comment
//! log_outputs = "3:stderr"
//! unix_sock_group = 'libvirt'
//! tls_allowed_dn_list = [
//!     "C=GB,O=Example",
//!     "C=FR,O=Example",       # trailing comma is fine
//! ]
//! ```
//!
//! * a statement is `key = value`, ended by a newline, a `;` or the end of the file;
//! * keys are identifiers `[A-Za-z_][A-Za-z0-9_]*`;
//! * values are integers (decimal, optional sign), strings in `"…"`, `'…'` (one
//!   line, no escapes) or `"""…"""` (may span lines), or lists `[ v, v, ]` of
//!   values that may span lines and end with a trailing comma;
//! * `#` starts a comment that runs to the end of the line.
//!
//! Unknown keys are kept; callers look up the keys they know, as libvirt does.
//! When a key is assigned several times the last assignment wins.
//! Every error names the file and the line, in libvirt's words.

mod daemon_settings;
mod net_settings;

pub use daemon_settings::{DaemonSettings, ServerSettings};
pub use net_settings::NetSettings;

use std::path::{Path, PathBuf};

/// The name used in error messages for a configuration that has no file.
const NO_FILE: &str = "memory conf";

/// One value on the right-hand side of an assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfValue {
    Int(i64),
    Str(String),
    List(Vec<ConfValue>),
}

/// One `key = value` assignment and the line its key is on.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    key: String,
    value: ConfValue,
    line: usize,
}

/// A parsed configuration file: its assignments in file order.
#[derive(Clone, Debug, Default)]
pub struct ConfFile {
    path: Option<PathBuf>,
    entries: Vec<Entry>,
}

/// A configuration file that could not be read, parsed or understood.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file syntax error: {}:{line}: {reason}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("configuration file error: {}:{line}: {key}: expected {expected}", path.display())]
    Type {
        path: PathBuf,
        line: usize,
        key: String,
        expected: &'static str,
    },
    #[error("configuration file error: {}:{line}: {key}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        reason: String,
    },
    #[error("cannot read configuration file {}: {}", path.display(), io_reason(source))]
    Io { path: PathBuf, source: std::io::Error },
}

/// The text of an I/O error without Rust's " (os error N)" suffix, as libvirt prints it.
fn io_reason(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_owned(),
        None => err.to_string(),
    }
}

impl ConfFile {
    /// Parses `text`; `path` is only used to name the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<ConfFile, ConfigError> {
        let entries = Parser::new(path, text).statements()?;
        Ok(ConfFile {
            path: Some(path.to_path_buf()),
            entries,
        })
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<ConfFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ConfFile::parse(path, &text)
    }

    /// A configuration with no file and no assignments: every lookup gives the default.
    pub fn empty() -> ConfFile {
        ConfFile::default()
    }

    /// The file this configuration was parsed from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The value of the last assignment to `key`.
    pub fn get(&self, key: &str) -> Option<&ConfValue> {
        self.entry(key).map(|e| &e.value)
    }

    /// The line of the last assignment to `key`.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.entry(key).map(|e| e.line)
    }

    /// The assigned keys in file order, repeated keys included.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.key.as_str())
    }

    /// `key` as an integer in `0..=u32::MAX`.
    pub fn get_u32(&self, key: &str) -> Result<Option<u32>, ConfigError> {
        self.get_int(key, "an unsigned integer")
    }

    /// `key` as an integer in `i32::MIN..=i32::MAX`.
    pub fn get_i32(&self, key: &str) -> Result<Option<i32>, ConfigError> {
        self.get_int(key, "an integer")
    }

    /// `key` as a non-negative integer that fits a `usize`.
    pub fn get_usize(&self, key: &str) -> Result<Option<usize>, ConfigError> {
        self.get_int(key, "an unsigned integer")
    }

    /// `key` as a string.
    pub fn get_string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        match &entry.value {
            ConfValue::Str(s) => Ok(Some(s.clone())),
            _ => Err(self.type_error(entry, "a string")),
        }
    }

    /// `key` as a list of strings; a single string is a one-element list.
    pub fn get_string_list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        match &entry.value {
            ConfValue::Str(s) => Ok(Some(vec![s.clone()])),
            ConfValue::List(items) => items
                .iter()
                .map(|item| match item {
                    ConfValue::Str(s) => Ok(s.clone()),
                    _ => Err(self.type_error(entry, "a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            ConfValue::Int(_) => Err(self.type_error(entry, "a list of strings")),
        }
    }

    /// A semantic error about `key`, located at its last assignment (line 0 if unset).
    pub fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.error_path(),
            line: self.line_of(key).unwrap_or(0),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }

    fn get_int<T: TryFrom<i64>>(&self, key: &str, expected: &'static str) -> Result<Option<T>, ConfigError> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        match entry.value {
            ConfValue::Int(n) => T::try_from(n)
                .map(Some)
                .map_err(|_| self.type_error(entry, expected)),
            _ => Err(self.type_error(entry, expected)),
        }
    }

    fn type_error(&self, entry: &Entry, expected: &'static str) -> ConfigError {
        ConfigError::Type {
            path: self.error_path(),
            line: entry.line,
            key: entry.key.clone(),
            expected,
        }
    }

    fn error_path(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(|| PathBuf::from(NO_FILE))
    }
}

/// A cursor over the file's bytes. All syntax is ASCII; string contents are
/// sliced on ASCII quote boundaries so UTF-8 inside strings stays intact.
struct Parser<'a> {
    path: &'a Path,
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Parser<'a> {
    fn new(path: &'a Path, text: &'a str) -> Parser<'a> {
        Parser {
            path,
            text,
            pos: 0,
            line: 1,
        }
    }

    fn statements(mut self) -> Result<Vec<Entry>, ConfigError> {
        let mut entries = Vec::new();
        loop {
            self.skip_blanks_comments_and_eols();
            if self.at_end() {
                return Ok(entries);
            }
            entries.push(self.statement()?);
            self.separator()?;
        }
    }

    fn statement(&mut self) -> Result<Entry, ConfigError> {
        let line = self.line;
        let key = self.name()?;
        self.skip_blanks();
        if self.peek() != Some(b'=') {
            return Err(self.syntax("expecting an assignment"));
        }
        self.pos += 1;
        self.skip_blanks();
        let value = self.value()?;
        Ok(Entry { key, value, line })
    }

    /// After a statement: blanks, an optional comment, then a newline, `;` or the end.
    fn separator(&mut self) -> Result<(), ConfigError> {
        self.skip_blanks();
        self.skip_comment();
        match self.peek() {
            None | Some(b'\n' | b'\r') => Ok(()),
            Some(b';') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.syntax("expecting a separator")),
        }
    }

    fn name(&mut self) -> Result<String, ConfigError> {
        let start = self.pos;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.pos += 1,
            _ => return Err(self.syntax("expecting a name")),
        }
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
            self.pos += 1;
        }
        Ok(self.text[start..self.pos].to_owned())
    }

    fn value(&mut self) -> Result<ConfValue, ConfigError> {
        match self.peek() {
            Some(b'"' | b'\'') => self.string().map(ConfValue::Str),
            Some(b'[') => self.list().map(ConfValue::List),
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => self.number().map(ConfValue::Int),
            _ => Err(self.syntax("expecting a value")),
        }
    }

    fn string(&mut self) -> Result<String, ConfigError> {
        if self.text[self.pos..].starts_with("\"\"\"") {
            let start_line = self.line;
            self.pos += 3;
            let Some(len) = self.text[self.pos..].find("\"\"\"") else {
                self.line = start_line;
                return Err(self.syntax("unterminated string"));
            };
            let s = &self.text[self.pos..self.pos + len];
            self.line += s.bytes().filter(|&c| c == b'\n').count();
            self.pos += len + 3;
            return Ok(s.to_owned());
        }
        let Some(quote) = self.peek() else {
            return Err(self.syntax("expecting a value"));
        };
        self.pos += 1;
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c != quote && c != b'\n' && c != b'\r') {
            self.pos += 1;
        }
        if self.peek() != Some(quote) {
            return Err(self.syntax("unterminated string"));
        }
        let s = self.text[start..self.pos].to_owned();
        self.pos += 1;
        Ok(s)
    }

    fn list(&mut self) -> Result<Vec<ConfValue>, ConfigError> {
        let open_line = self.line;
        self.pos += 1; // '['
        let mut items = Vec::new();
        loop {
            self.skip_blanks_comments_and_eols();
            match self.peek() {
                None => {
                    self.line = open_line;
                    return Err(self.syntax("list is not closed with ]"));
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(_) => items.push(self.value()?),
            }
            self.skip_blanks_comments_and_eols();
            match self.peek() {
                None => {
                    self.line = open_line;
                    return Err(self.syntax("list is not closed with ]"));
                }
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                Some(_) => return Err(self.syntax("expecting a separator in list")),
            }
        }
    }

    fn number(&mut self) -> Result<i64, ConfigError> {
        let negative = self.peek() == Some(b'-');
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        if !matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            return Err(self.syntax("unterminated number"));
        }
        let mut n: i64 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            let digit = i64::from(c - b'0');
            let next = n.checked_mul(10).and_then(|n| {
                if negative {
                    n.checked_sub(digit)
                } else {
                    n.checked_add(digit)
                }
            });
            n = next.ok_or_else(|| self.syntax("number out of range"))?;
            self.pos += 1;
        }
        Ok(n)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn skip_comment(&mut self) {
        if self.peek() == Some(b'#') {
            while matches!(self.peek(), Some(c) if c != b'\n' && c != b'\r') {
                self.pos += 1;
            }
        }
    }

    fn skip_blanks_comments_and_eols(&mut self) {
        loop {
            self.skip_blanks();
            self.skip_comment();
            match self.peek() {
                Some(b'\n') => {
                    self.line += 1;
                    self.pos += 1;
                }
                Some(b'\r') => self.pos += 1,
                _ => return,
            }
        }
    }

    fn syntax(&self, reason: &str) -> ConfigError {
        ConfigError::Syntax {
            path: self.path.to_path_buf(),
            line: self.line,
            reason: reason.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfFile, ConfigError> {
        ConfFile::parse(Path::new("/x/virtqemud.conf"), text)
    }

    fn ok(text: &str) -> ConfFile {
        match parse(text) {
            Ok(conf) => conf,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn syntax_error(text: &str) -> (usize, String) {
        match parse(text) {
            Err(ConfigError::Syntax { line, reason, .. }) => (line, reason),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    fn s(v: &str) -> ConfValue {
        ConfValue::Str(v.to_owned())
    }

    #[test]
    fn parses_scalars_comments_and_blank_lines() {
        let conf =
            ok("# header\n\n  max_workers = 20  # trailing\nname=\"a b\"\nq = 'it'\nneg = -5\npos = +7\n");
        assert_eq!(conf.get("max_workers"), Some(&ConfValue::Int(20)));
        assert_eq!(conf.get("name"), Some(&s("a b")));
        assert_eq!(conf.get("q"), Some(&s("it")));
        assert_eq!(conf.get("neg"), Some(&ConfValue::Int(-5)));
        assert_eq!(conf.get("pos"), Some(&ConfValue::Int(7)));
        assert_eq!(conf.line_of("max_workers"), Some(3));
        assert_eq!(conf.line_of("neg"), Some(6));
        assert_eq!(conf.get("missing"), None);
        assert_eq!(conf.path(), Some(Path::new("/x/virtqemud.conf")));
    }

    #[test]
    fn hash_inside_string_is_not_a_comment() {
        let conf = ok("a = \"x # y\" # z");
        assert_eq!(conf.get("a"), Some(&s("x # y")));
    }

    #[test]
    fn lists_span_lines_with_comments_and_trailing_comma() {
        let conf =
            ok("l = [\n  \"a\",   # first\n  'b',\n  3,\n]\nafter = 1\nempty = [ ]\nnested = [[1], []]\n");
        assert_eq!(
            conf.get("l"),
            Some(&ConfValue::List(vec![s("a"), s("b"), ConfValue::Int(3)]))
        );
        assert_eq!(conf.line_of("after"), Some(6));
        assert_eq!(conf.get("empty"), Some(&ConfValue::List(vec![])));
        assert_eq!(
            conf.get("nested"),
            Some(&ConfValue::List(vec![
                ConfValue::List(vec![ConfValue::Int(1)]),
                ConfValue::List(vec![])
            ]))
        );
    }

    #[test]
    fn triple_quoted_strings_span_lines() {
        let conf = ok("a = \"\"\"one\ntwo\"\"\"\nb = 1\n");
        assert_eq!(conf.get("a"), Some(&s("one\ntwo")));
        assert_eq!(conf.line_of("b"), Some(3));
    }

    #[test]
    fn semicolons_separate_statements_and_crlf_is_accepted() {
        let conf = ok("a = 1; b = 2\r\nc = 3\r\n");
        assert_eq!(conf.get("b"), Some(&ConfValue::Int(2)));
        assert_eq!(conf.line_of("c"), Some(2));
    }

    #[test]
    fn last_assignment_wins_and_unknown_keys_are_kept() {
        let conf = ok("max_workers = 1\nfrobnicate = \"yes\"\nmax_workers = 9\n");
        assert_eq!(conf.get_u32("max_workers").ok().flatten(), Some(9));
        assert_eq!(conf.line_of("max_workers"), Some(3));
        assert_eq!(
            conf.keys().collect::<Vec<_>>(),
            ["max_workers", "frobnicate", "max_workers"]
        );
    }

    #[test]
    fn empty_input_and_empty_conf() {
        assert_eq!(ok("").keys().count(), 0);
        assert_eq!(ok("\n# only\n   \n").keys().count(), 0);
        let conf = ConfFile::empty();
        assert_eq!(conf.path(), None);
        assert_eq!(conf.get_u32("x").ok().flatten(), None);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(
            syntax_error("a = 1\nb 2\n"),
            (2, "expecting an assignment".into())
        );
        assert_eq!(syntax_error("a = 1\n\nb =\n"), (3, "expecting a value".into()));
        assert_eq!(
            syntax_error("a = \"abc\nb = 1\n"),
            (1, "unterminated string".into())
        );
        assert_eq!(syntax_error("\n\na = 'abc"), (3, "unterminated string".into()));
        assert_eq!(
            syntax_error("a = \"\"\"abc\n\n"),
            (1, "unterminated string".into())
        );
        assert_eq!(
            syntax_error("x = 1\na = [ \"a\",\n \"b\"\n"),
            (2, "list is not closed with ]".into())
        );
        assert_eq!(
            syntax_error("a = [ \"a\" \"b\" ]"),
            (1, "expecting a separator in list".into())
        );
        assert_eq!(
            syntax_error("a = [ \"a\",\nb = 1 ]"),
            (2, "expecting a value".into())
        );
        assert_eq!(syntax_error("a = 1\n9a = 1\n"), (2, "expecting a name".into()));
        assert_eq!(syntax_error("a-b = 1"), (1, "expecting an assignment".into()));
        assert_eq!(syntax_error("a = 1 2"), (1, "expecting a separator".into()));
        assert_eq!(syntax_error("a = 5x"), (1, "expecting a separator".into()));
        assert_eq!(syntax_error("a = -"), (1, "unterminated number".into()));
        assert_eq!(syntax_error("a = yes"), (1, "expecting a value".into()));
        assert_eq!(
            syntax_error("a = 99999999999999999999"),
            (1, "number out of range".into())
        );
    }

    #[test]
    fn syntax_error_message_is_libvirt_like() {
        let err = parse("a = 1\nb = 2\nc =").err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("configuration file syntax error: /x/virtqemud.conf:3: expecting a value")
        );
    }

    #[test]
    fn typed_getters() {
        let conf =
            ok("n = 5\nbig = 5000000000\nneg = -1\nstr = \"x\"\nlist = [\"a\", \"b\"]\nmixed = [\"a\", 1]\n");
        assert_eq!(conf.get_u32("n").ok().flatten(), Some(5));
        assert_eq!(conf.get_i32("neg").ok().flatten(), Some(-1));
        assert_eq!(conf.get_usize("big").ok().flatten(), Some(5_000_000_000));
        assert_eq!(conf.get_string("str").ok().flatten().as_deref(), Some("x"));
        assert_eq!(
            conf.get_string_list("str").ok().flatten(),
            Some(vec!["x".to_owned()])
        );
        assert_eq!(
            conf.get_string_list("list").ok().flatten(),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(conf.get_string("absent").ok().flatten(), None);
        assert_eq!(conf.get_string_list("absent").ok().flatten(), None);
    }

    #[test]
    fn type_errors_name_the_key_and_line() {
        let conf = ok("n = 5\nbig = 5000000000\nneg = -1\nstr = \"x\"\nmixed = [\"a\", 1]\n");
        let msg = |r: Result<(), ConfigError>| r.err().map(|e| e.to_string());
        assert_eq!(
            msg(conf.get_u32("big").map(drop)).as_deref(),
            Some("configuration file error: /x/virtqemud.conf:2: big: expected an unsigned integer")
        );
        assert_eq!(
            msg(conf.get_u32("neg").map(drop)).as_deref(),
            Some("configuration file error: /x/virtqemud.conf:3: neg: expected an unsigned integer")
        );
        assert_eq!(
            msg(conf.get_u32("str").map(drop)).as_deref(),
            Some("configuration file error: /x/virtqemud.conf:4: str: expected an unsigned integer")
        );
        assert_eq!(
            msg(conf.get_string("n").map(drop)).as_deref(),
            Some("configuration file error: /x/virtqemud.conf:1: n: expected a string")
        );
        assert_eq!(
            msg(conf.get_string_list("mixed").map(drop)).as_deref(),
            Some("configuration file error: /x/virtqemud.conf:5: mixed: expected a list of strings")
        );
        assert!(matches!(
            conf.get_string_list("n"),
            Err(ConfigError::Type { line: 1, .. })
        ));
        assert!(matches!(
            conf.get_i32("big"),
            Err(ConfigError::Type {
                line: 2,
                expected: "an integer",
                ..
            })
        ));
    }

    #[test]
    fn load_reads_files_and_reports_io_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("virtqemud.conf");
        std::fs::write(&path, "max_clients = 7\n").expect("write");
        let conf = ConfFile::load(&path).expect("load");
        assert_eq!(conf.get_u32("max_clients").ok().flatten(), Some(7));
        assert_eq!(conf.path(), Some(path.as_path()));

        let missing = dir.path().join("nope.conf");
        let err = ConfFile::load(&missing).err().map(|e| e.to_string());
        assert_eq!(
            err,
            Some(format!(
                "cannot read configuration file {}: No such file or directory",
                missing.display()
            ))
        );
    }

    #[test]
    fn syntax_error_in_loaded_file_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.conf");
        std::fs::write(&path, "ok = 1\nbad\n").expect("write");
        match ConfFile::load(&path) {
            Err(ConfigError::Syntax { path: p, line, .. }) => {
                assert_eq!(p, path);
                assert_eq!(line, 2);
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }
}
