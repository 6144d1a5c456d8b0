//! Writing XML the way libvirt prints it: two-space indentation,
//! single-quoted attributes, every value escaped ([`crate::escape`]).

use std::fmt::{Display, Write as _};

/// Attributes of an element, in order.
pub type Attrs<'a> = &'a [(&'a str, &'a dyn Display)];

/// A document being written, element by element.
#[derive(Debug, Default)]
pub struct XmlWriter {
    buf: String,
    depth: usize,
}

impl XmlWriter {
    pub fn new() -> XmlWriter {
        XmlWriter::default()
    }

    fn start(&mut self, tag: &str, attrs: Attrs<'_>) {
        for _ in 0..self.depth {
            self.buf.push_str("  ");
        }
        self.buf.push('<');
        self.buf.push_str(tag);
        for (name, value) in attrs {
            // Writing to a String cannot fail.
            let _ = write!(self.buf, " {name}='{}'", crate::escape(&value.to_string()));
        }
    }

    /// `<tag …>` and one level deeper.
    pub fn open(&mut self, tag: &str, attrs: Attrs<'_>) {
        self.start(tag, attrs);
        self.buf.push_str(">\n");
        self.depth += 1;
    }

    /// `</tag>`, one level up.
    pub fn close(&mut self, tag: &str) {
        self.depth = self.depth.saturating_sub(1);
        for _ in 0..self.depth {
            self.buf.push_str("  ");
        }
        let _ = writeln!(self.buf, "</{tag}>");
    }

    /// `<tag …/>`
    pub fn empty(&mut self, tag: &str, attrs: Attrs<'_>) {
        self.start(tag, attrs);
        self.buf.push_str("/>\n");
    }

    /// `<tag …>text</tag>`
    pub fn text(&mut self, tag: &str, attrs: Attrs<'_>, text: &dyn Display) {
        self.start(tag, attrs);
        let _ = writeln!(self.buf, ">{}</{tag}>", crate::escape(&text.to_string()));
    }

    /// The document written.
    pub fn finish(self) -> String {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_quotes_and_escapes() {
        let mut w = XmlWriter::new();
        w.open("network", &[("ipv6", &"yes")]);
        w.text("name", &[], &"a&b");
        w.empty("bridge", &[("name", &"virbr0"), ("delay", &0)]);
        w.close("network");
        assert_eq!(
            w.finish(),
            "<network ipv6='yes'>\n  <name>a&amp;b</name>\n  <bridge name='virbr0' delay='0'/>\n</network>\n"
        );
    }
}
