//! A client certificate's subject as libvirt matches it against
//! `tls_allowed_dn_list`: `C=GB,ST=London,O=Example,CN=client`, the
//! attributes in certificate order (GnuTLS's `gnutls_x509_crt_get_dn`),
//! and glob patterns (`*`, `?`) over that text.
//!
//! Only what that needs is read from the DER: the certificate's
//! `tbsCertificate.subject` (a sequence of sets of type/value pairs).

/// One DER element: tag and contents.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed value's contents.
fn children(mut contents: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !contents.is_empty() {
        let (tag, value, rest) = element(contents)?;
        out.push((tag, value));
        contents = rest;
    }
    Some(out)
}

/// Dotted text of a DER object identifier.
fn oid(bytes: &[u8]) -> Option<String> {
    let (&first, rest) = bytes.split_first()?;
    let mut parts = vec![u64::from(first / 40), u64::from(first % 40)];
    let mut v = 0u64;
    for b in rest {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            parts.push(v);
            v = 0;
        }
    }
    Some(parts.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

fn short_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "serialNumber",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "EMAIL",
        other => return other.to_owned(),
    }
    .to_owned()
}

/// Escapes what RFC 4514 escapes in a value.
fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') || (i == 0 && matches!(c, '#' | ' ')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The subject DN of a DER certificate, `None` if it cannot be read.
pub fn subject(cert: &[u8]) -> Option<String> {
    let (_, cert, _) = element(cert)?;
    let (_, tbs, _) = element(cert)?;
    let fields = children(tbs)?;
    // [0] version is optional: serial, signature, issuer, validity, subject.
    let skip = usize::from(fields.first()?.0 == 0xa0);
    let (_, subject) = *fields.get(skip + 4)?;
    let mut parts = Vec::new();
    for (_, rdn) in children(subject)? {
        for (_, pair) in children(rdn)? {
            let kv = children(pair)?;
            let (tag, key) = *kv.first()?;
            let (_, value) = *kv.get(1)?;
            if tag != 0x06 {
                return None;
            }
            let value = String::from_utf8_lossy(value);
            parts.push(format!("{}={}", short_name(&oid(key)?), escape_value(&value)));
        }
    }
    Some(parts.join(","))
}

/// `g_pattern_match_simple`: `*` any run, `?` any one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("C=GB,O=Example,CN=*", "C=GB,O=Example,CN=client1"));
        assert!(glob_match("*", ""));
        assert!(glob_match("C=?B,*", "C=GB,O=x"));
        assert!(!glob_match("C=GB,CN=*", "C=FR,CN=x"));
        assert!(!glob_match("C=GB", "C=GB,CN=x"));
    }

    #[test]
    fn truncated_der_is_not_a_subject() {
        assert_eq!(subject(&[]), None);
        assert_eq!(subject(&[0x30, 0x82, 0xff]), None);
        assert_eq!(subject(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
    }
}
