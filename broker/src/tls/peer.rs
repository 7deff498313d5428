//! What a client certificate says about its holder: the names `verify_and_map` tries as user
//! names, the digests `pinned_certs` and `/connz` use.

use x509_parser::der_parser::oid::Oid;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// A parsed client certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCert {
    /// The subject as Go prints it (`CN=alice,OU=dev,O=bank`), which nats-server shows and
    /// matches user names against.
    pub subject: String,
    /// `DC=` parts of the subject, most significant last, joined by commas; empty when none.
    pub domain_components: String,
    /// The subject's attributes, one list per RDN in certificate order, for order-insensitive
    /// matching against a user name written as a DN.
    pub rdns: Vec<Vec<(String, String)>>,
    /// Email addresses of the subject alternative names.
    pub emails: Vec<String>,
    /// DNS names of the subject alternative names.
    pub dns: Vec<String>,
    /// URIs of the subject alternative names.
    pub uris: Vec<String>,
    /// SHA-256 of the DER SubjectPublicKeyInfo (what `pinned_certs` lists).
    pub spki_sha256: [u8; 32],
    /// SHA-256 of the whole certificate.
    pub cert_sha256: [u8; 32],
}

impl PeerCert {
    /// Parses a DER certificate; `None` if it is not one.
    pub fn parse(der: &[u8]) -> Option<PeerCert> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let (mut emails, mut dns, mut uris) = (Vec::new(), Vec::new(), Vec::new());
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::RFC822Name(e) => emails.push(e.to_string()),
                    GeneralName::DNSName(d) => dns.push(d.to_string()),
                    GeneralName::URI(u) => uris.push(u.to_string()),
                    _ => {}
                }
            }
        }
        // Go also counts emailAddress attributes of the subject as the certificate's emails.
        for atv in cert.subject().iter_by_oid(&oid(EMAIL)) {
            if let Ok(e) = atv.as_str() {
                emails.push(e.to_string());
            }
        }
        Some(PeerCert {
            subject: go_subject(cert.subject()),
            domain_components: domain_components(cert.subject()),
            rdns: rdns(cert.subject()),
            emails,
            dns,
            uris,
            spki_sha256: sha256(cert.public_key().raw),
            cert_sha256: sha256(der),
        })
    }

    /// The names to try as user names, in nats-server's order: emails, DNS names, URIs, then the
    /// subject with its domain components, then the subject alone.
    pub fn candidate_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .emails
            .iter()
            .chain(&self.dns)
            .chain(&self.uris)
            .cloned()
            .collect();
        if !self.domain_components.is_empty() {
            names.push(format!("{},{}", self.subject, self.domain_components));
        }
        names.push(self.subject.clone());
        names
    }

    /// Whether `user`, read as a distinguished name (`CN=a,OU=b`), has exactly the subject's
    /// attributes, in any order (type names and values compared without case).
    pub fn subject_is(&self, user: &str) -> bool {
        let Some(wanted) = parse_dn(user) else {
            return false;
        };
        let have: Vec<&(String, String)> = self.rdns.iter().flatten().collect();
        wanted.len() == have.len()
            && wanted.iter().all(|(t, v)| {
                have.iter()
                    .any(|(ht, hv)| ht.eq_ignore_ascii_case(t) && hv.eq_ignore_ascii_case(v))
            })
    }
}

/// The DNS names of a DER certificate's subject alternative names.
pub fn dns_names(der: &[u8]) -> Option<Vec<String>> {
    PeerCert::parse(der).map(|c| c.dns)
}

const CN: &str = "2.5.4.3";
const SERIAL: &str = "2.5.4.5";
const C: &str = "2.5.4.6";
const L: &str = "2.5.4.7";
const ST: &str = "2.5.4.8";
const STREET: &str = "2.5.4.9";
const O: &str = "2.5.4.10";
const OU: &str = "2.5.4.11";
const POSTAL: &str = "2.5.4.17";
const DC: &str = "0.9.2342.19200300.100.1.25";
const UID: &str = "0.9.2342.19200300.100.1.1";
const EMAIL: &str = "1.2.840.113549.1.9.1";

/// The attribute names Go prints, in the order Go lists a parsed subject's attributes.
const GO_ORDER: [(&str, &str); 9] = [
    (C, "C"),
    (ST, "ST"),
    (L, "L"),
    (STREET, "STREET"),
    (POSTAL, "POSTALCODE"),
    (O, "O"),
    (OU, "OU"),
    (CN, "CN"),
    (SERIAL, "SERIALNUMBER"),
];

fn oid(dotted: &str) -> Oid<'static> {
    dotted
        .parse()
        .unwrap_or_else(|_| Oid::from(&[2, 5, 4, 3]).expect("a valid OID"))
}

/// Go's `Subject.ToRDNSequence().String()`: the known attributes regrouped in Go's order,
/// then printed most significant last, each value escaped as RFC 4514 asks.
fn go_subject(name: &X509Name<'_>) -> String {
    let mut parts = Vec::new();
    for (dotted, label) in GO_ORDER {
        for atv in name.iter_by_oid(&oid(dotted)) {
            parts.push(format!("{label}={}", escape(&value_text(atv))));
        }
    }
    parts.reverse();
    parts.join(",")
}

fn domain_components(name: &X509Name<'_>) -> String {
    let mut dcs: Vec<String> = name
        .iter_by_oid(&oid(DC))
        .map(|atv| format!("DC={}", escape(&value_text(atv))))
        .collect();
    dcs.reverse();
    dcs.join(",")
}

fn rdns(name: &X509Name<'_>) -> Vec<Vec<(String, String)>> {
    name.iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| (type_name(atv), value_text(atv)))
                .collect()
        })
        .collect()
}

fn type_name(atv: &AttributeTypeAndValue<'_>) -> String {
    let dotted = atv.attr_type().to_id_string();
    let known = GO_ORDER
        .iter()
        .copied()
        .chain([(DC, "DC"), (UID, "UID"), (EMAIL, "EMAILADDRESS")])
        .find(|(o, _)| *o == dotted);
    known.map_or(dotted, |(_, label)| label.to_owned())
}

fn value_text(atv: &AttributeTypeAndValue<'_>) -> String {
    match atv.as_str() {
        Ok(s) => s.to_owned(),
        Err(_) => format!("#{}", super::settings::hex(atv.attr_value().data)),
    }
}

/// RFC 4514 escaping as Go does it.
fn escape(value: &str) -> String {
    let count = value.chars().count();
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => i == 0 || i + 1 == count,
            '#' => i == 0,
            _ => false,
        };
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reads `CN=a,OU=b+O=c` into its attributes; `None` when it is not a DN.
fn parse_dn(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let (mut part, mut escaped) = (String::new(), false);
    let mut flush = |part: &mut String| -> Option<()> {
        let (t, v) = part.split_once('=')?;
        let (t, v) = (t.trim(), v.trim());
        if t.is_empty() {
            return None;
        }
        let name = match GO_ORDER
            .iter()
            .find(|(_, label)| label.eq_ignore_ascii_case(t))
        {
            Some((_, label)) => (*label).to_owned(),
            None if t.eq_ignore_ascii_case("E") || t.eq_ignore_ascii_case("EMAILADDRESS") => {
                "EMAILADDRESS".to_owned()
            }
            None => t.to_ascii_uppercase(),
        };
        out.push((name, unescape(v)));
        part.clear();
        Some(())
    };
    for c in text.chars() {
        if escaped {
            part.push('\\');
            part.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' || c == '+' {
            flush(&mut part)?;
        } else {
            part.push(c);
        }
    }
    flush(&mut part)?;
    Some(out)
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_go() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" lead"), "\\ lead");
        assert_eq!(escape("trail "), "trail\\ ");
        assert_eq!(escape("#x#"), "\\#x#");
    }

    #[test]
    fn a_dn_is_read_into_its_attributes() {
        assert_eq!(
            parse_dn("CN=alice, ou=dev+O=bank\\, inc").unwrap(),
            vec![
                ("CN".to_owned(), "alice".to_owned()),
                ("OU".to_owned(), "dev".to_owned()),
                ("O".to_owned(), "bank, inc".to_owned()),
            ]
        );
        assert!(parse_dn("no equals sign").is_none());
        assert!(parse_dn("=value").is_none());
    }
}
