//! XML text → a small element tree, with quick-xml's pull reader. This is
//! the only place that sees raw XML: it resolves the predefined and
//! character references, refuses any `<!DOCTYPE>` (so no entity is ever
//! declared, let alone fetched from outside) and reports what went wrong
//! and where (line, column, innermost open element).

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::XmlError;

/// Deeper documents are refused (libxml2's own default limit is 256), so
/// that building and dropping the tree stays cheap.
pub const MAX_DEPTH: usize = 256;

/// One element: its attributes, its own text (CDATA included, child
/// elements' text excluded) and its child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child called `name`, `None` when absent or
    /// empty (as libvirt's `virXPathString`).
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
    }
}

/// Line and column (both from 1; the column counts characters) of a byte
/// offset in `src`.
fn position(src: &str, offset: u64) -> (u32, u32) {
    let end = usize::try_from(offset).unwrap_or(usize::MAX).min(src.len());
    let before = &src.as_bytes()[..end];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    // Count characters, i.e. bytes that are not UTF-8 continuation bytes.
    let column = before[line_start..].iter().filter(|&&b| b & 0xc0 != 0x80).count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// Characters XML 1.0 does not allow in a document.
fn check_chars(s: &str) -> Result<(), String> {
    match s.chars().find(
        |&c| matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}'),
    ) {
        Some(c) => Err(format!(
            "invalid character 0x{:02x} (not allowed in XML 1.0)",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

struct TreeBuilder<'a> {
    src: &'a str,
    stack: Vec<Element>,
    root: Option<Element>,
}

impl TreeBuilder<'_> {
    fn error_at(&self, offset: u64, detail: impl Into<String>) -> XmlError {
        let (line, column) = position(self.src, offset);
        XmlError::NotWellFormed {
            detail: detail.into(),
            line,
            column,
            element: self.stack.last().map(|e| e.name.clone()),
        }
    }

    fn open(&mut self, start: &BytesStart<'_>, offset: u64) -> Result<(), XmlError> {
        if self.root.is_some() {
            return Err(self.error_at(offset, "Extra content at the end of the document"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error_at(offset, format!("elements nested deeper than {MAX_DEPTH} levels")));
        }
        let name = start.name().as_ref().to_owned();
        let mut attrs = Vec::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| self.error_at(offset, format!("in attributes of <{name}>: {e}")))?;
            let key = attr.key.as_ref().to_owned();
            let value = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|e| {
                self.error_at(
                    offset,
                    format!("in attribute '{key}' of <{name}>: {}", describe(&e)),
                )
            })?;
            check_chars(&value).map_err(|e| self.error_at(offset, format!("in attribute '{key}': {e}")))?;
            attrs.push((key, value.into_owned()));
        }
        self.stack.push(Element {
            name,
            attrs,
            ..Element::default()
        });
        Ok(())
    }

    fn close(&mut self) {
        if let Some(done) = self.stack.pop() {
            match self.stack.last_mut() {
                Some(parent) => parent.children.push(done),
                None => self.root = Some(done),
            }
        }
    }

    fn text(&mut self, text: &str, offset: u64) -> Result<(), XmlError> {
        check_chars(text).map_err(|e| self.error_at(offset, e))?;
        match self.stack.last_mut() {
            Some(open) => open.text.push_str(text),
            None if text.chars().all(char::is_whitespace) => {}
            None if self.root.is_some() => {
                return Err(self.error_at(offset, "Extra content at the end of the document"));
            }
            None => return Err(self.error_at(offset, "Start tag expected, '<' not found")),
        }
        Ok(())
    }
}

/// quick-xml's error text, with libxml2's wording for the usual cases.
fn describe(e: &quick_xml::Error) -> String {
    use quick_xml::escape::EscapeError;
    match e {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            format!("Entity '{name}' not defined")
        }
        other => other.to_string(),
    }
}

/// Parses `src`, a `document` (`domain`, `network`, …: named in errors),
/// into its root element.
pub fn parse_tree(src: &str, document: &'static str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(src);
    let mut tree = TreeBuilder {
        src,
        stack: Vec::new(),
        root: None,
    };
    loop {
        let offset = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => return Err(tree.error_at(reader.error_position(), describe(&e))),
        };
        match event {
            Event::Start(start) => tree.open(&start, offset)?,
            Event::Empty(start) => {
                tree.open(&start, offset)?;
                tree.close();
            }
            Event::End(_) => tree.close(),
            Event::Text(t) => tree.text(&t.xml10_content(), offset)?,
            Event::CData(t) => tree.text(&t.xml10_content(), offset)?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r.xml10_content()) {
                        Some(s) => s.to_owned(),
                        None => {
                            let detail = format!("Entity '{}' not defined", r.xml10_content());
                            return Err(tree.error_at(offset, detail));
                        }
                    },
                    Err(e) => return Err(tree.error_at(offset, describe(&e))),
                };
                tree.text(&resolved, offset)?;
            }
            Event::DocType(t) => {
                let (line, column) = position(src, offset);
                let entities = t.xml10_content().contains("<!ENTITY");
                return Err(XmlError::Doctype {
                    entities,
                    line,
                    column,
                    document,
                });
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = tree.stack.last() {
        let detail = format!("Premature end of data in tag {}", open.name);
        return Err(tree.error_at(src.len() as u64, detail));
    }
    match tree.root.take() {
        Some(root) => Ok(root),
        None => Err(tree.error_at(0, "Document is empty")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_tree_with_text_and_references() {
        let root = parse_tree(
            "<?xml version='1.0'?>\n<!-- c --><a x='1 &amp; 2' y=\"&#65;\"><b>t&lt;&#x41;<![CDATA[<raw>]]></b><c/></a>\n",
            "domain",
        )
        .unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.attr("x"), Some("1 & 2"));
        assert_eq!(root.attr("y"), Some("A"));
        assert_eq!(root.child_text("b"), Some("t<A<raw>"));
        assert!(root.child("c").is_some());
        assert_eq!(root.child_text("c"), None);
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = parse_tree("<domain>\n  <name>x</nam>\n</domain>", "domain").unwrap_err();
        match &e {
            XmlError::NotWellFormed { line, element, .. } => {
                assert_eq!(*line, 2);
                assert_eq!(element.as_deref(), Some("name"));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().starts_with("XML error: "), "{e}");

        let e = parse_tree("<domain>\n  <name>", "domain").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");

        let e = parse_tree("<a>&foo;</a>", "domain").unwrap_err();
        assert!(e.to_string().contains("Entity 'foo' not defined"), "{e}");
        let e = parse_tree("<a b='&foo;'/>", "domain").unwrap_err();
        assert!(e.to_string().contains("Entity 'foo' not defined"), "{e}");

        assert!(
            parse_tree("", "domain")
                .unwrap_err()
                .to_string()
                .contains("Document is empty")
        );
        assert!(parse_tree("text", "domain").is_err());
        assert!(
            parse_tree("<a/><b/>", "domain")
                .unwrap_err()
                .to_string()
                .contains("Extra content")
        );
        assert!(
            parse_tree("<a>\u{1}</a>", "domain")
                .unwrap_err()
                .to_string()
                .contains("0x01")
        );
        assert!(parse_tree("<a>&#1;</a>", "domain").is_err());
        assert!(parse_tree("<a x='1' x='2'/>", "domain").is_err());
    }

    #[test]
    fn doctype_and_entities_refused() {
        let xxe = "<?xml version='1.0'?>\n<!DOCTYPE domain [\n  <!ENTITY xxe SYSTEM 'file:///etc/passwd'>\n]>\n<domain type='qemu'><name>&xxe;</name></domain>";
        let e = parse_tree(xxe, "domain").unwrap_err();
        assert_eq!(
            e,
            XmlError::Doctype {
                entities: true,
                line: 2,
                column: 1,
                document: "domain",
            }
        );
        assert_eq!(
            e.to_string(),
            "XML error: entity declarations (<!ENTITY>) are not allowed in domain XML (line 2, column 1)"
        );
        let e = parse_tree("<!DOCTYPE network><network/>", "network").unwrap_err();
        assert_eq!(
            e.to_string(),
            "XML error: DOCTYPE declarations are not allowed in network XML (line 1, column 1)"
        );
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(
            parse_tree(&deep, "domain")
                .unwrap_err()
                .to_string()
                .contains("nested deeper")
        );
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse_tree(&ok, "domain").is_ok());
    }

    #[test]
    fn position_counts_lines_and_characters() {
        assert_eq!(position("ab\ncé\nx", 0), (1, 1));
        assert_eq!(position("ab\ncé\nx", 3), (2, 1));
        assert_eq!(position("ab\ncé\nx", 6), (2, 3));
        assert_eq!(position("ab", 99), (1, 3));
    }
}
