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
    /// The subject as Go's `Name.String()` prints it, attributes outside Go's table included
    /// (as `OID=#hex`): what `/connz` shows.
    pub display_subject: String,
    /// `DC=` parts of the subject, in certificate order, joined by commas; empty when none.
    pub domain_components: String,
    /// The subject's attributes, one list per RDN in certificate order, for order-insensitive
    /// matching against a user name written as a DN; `None` when an attribute is outside the
    /// set nats-server matches this way (then it does not).
    pub rdns: Option<Vec<Vec<(String, String)>>>,
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
        Some(PeerCert {
            subject: go_subject(cert.subject()),
            display_subject: go_display_subject(cert.subject()),
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

    /// Whether `user`, read as a distinguished name (`CN=a,OU=b+O=c`), has the subject's RDNs in
    /// any order, each with the same attributes (type names without case, values exactly).
    pub fn subject_is(&self, user: &str) -> bool {
        let (Some(have), Some(wanted)) = (&self.rdns, parse_dn(user)) else {
            return false;
        };
        let same_rdn = |a: &Vec<(String, String)>, b: &Vec<(String, String)>| {
            a.len() == b.len()
                && a.iter().all(|(t, v)| {
                    b.iter()
                        .any(|(bt, bv)| bt.eq_ignore_ascii_case(t) && bv == v)
                })
        };
        wanted.len() == have.len()
            && wanted.iter().all(|w| have.iter().any(|h| same_rdn(w, h)))
            && have.iter().all(|h| wanted.iter().any(|w| same_rdn(w, h)))
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

/// Go's `Subject.ToRDNSequence().String()`: one RDN per known attribute type in Go's order (its
/// values joined by `+`, in certificate order; only the last CN and serial number), printed most
/// significant last, each value escaped as RFC 4514 asks.
fn go_subject(name: &X509Name<'_>) -> String {
    let mut rdns = known_rdns(name);
    rdns.reverse();
    rdns.join(",")
}

/// Go's `Name.String()`: attributes outside Go's table first (so printed last), each as
/// `OID=#<DER hex>`, then [`go_subject`]'s.
fn go_display_subject(name: &X509Name<'_>) -> String {
    let mut rdns: Vec<String> = name
        .iter_attributes()
        .filter(|atv| {
            !GO_ORDER
                .iter()
                .any(|(o, _)| *o == atv.attr_type().to_id_string())
        })
        .map(|atv| {
            format!(
                "{}=#{}",
                atv.attr_type().to_id_string(),
                der_hex(&value_text(atv))
            )
        })
        .collect();
    rdns.extend(known_rdns(name));
    rdns.reverse();
    rdns.join(",")
}

/// The known attributes, one `TYPE=v1+TYPE=v2` group per type, in Go's order.
fn known_rdns(name: &X509Name<'_>) -> Vec<String> {
    let mut rdns = Vec::new();
    for (dotted, label) in GO_ORDER {
        let mut values: Vec<String> = name.iter_by_oid(&oid(dotted)).map(value_text).collect();
        // Go keeps one common name and one serial number: the last, unless empty.
        if dotted == CN || dotted == SERIAL {
            values = values.pop().filter(|v| !v.is_empty()).into_iter().collect();
        }
        if !values.is_empty() {
            let group: Vec<String> = values
                .iter()
                .map(|v| format!("{label}={}", escape(v)))
                .collect();
            rdns.push(group.join("+"));
        }
    }
    rdns
}

/// Go's `getTLSAuthDCs`: the `DC=` values in certificate order, unescaped.
fn domain_components(name: &X509Name<'_>) -> String {
    let dcs: Vec<String> = name
        .iter_by_oid(&oid(DC))
        .map(|atv| format!("DC={}", value_text(atv)))
        .collect();
    dcs.join(",")
}

/// The RDNs in certificate order, or `None` when an attribute is one nats-server's DN matching
/// does not know.
fn rdns(name: &X509Name<'_>) -> Option<Vec<Vec<(String, String)>>> {
    name.iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let dotted = atv.attr_type().to_id_string();
                    let label = GO_ORDER
                        .iter()
                        .copied()
                        .chain([(DC, "DC")])
                        .find(|(o, _)| *o == dotted)?
                        .1;
                    Some((label.to_owned(), atv.as_str().ok()?.to_owned()))
                })
                .collect()
        })
        .collect()
}

/// A string value re-encoded as Go's `asn1.Marshal` does (PrintableString when it can be, else
/// UTF8String), in hex.
fn der_hex(value: &str) -> String {
    let printable = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
    let mut der = vec![if printable { 0x13 } else { 0x0c }];
    let len = value.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend_from_slice(value.as_bytes());
    super::settings::hex(&der)
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

/// Reads `CN=a,OU=b+O=c` into its RDNs (`+` joins attributes of one RDN); `None` when it is not
/// a DN.
fn parse_dn(text: &str) -> Option<Vec<Vec<(String, String)>>> {
    let mut rdns = vec![Vec::new()];
    let (mut part, mut escaped) = (String::new(), false);
    let attribute = |part: &str| -> Option<(String, String)> {
        let (t, v) = part.split_once('=')?;
        let (t, v) = (t.trim(), v.trim());
        if t.is_empty() {
            return None;
        }
        Some((t.to_ascii_uppercase(), unescape(v)))
    };
    for c in text.chars() {
        if escaped {
            part.push('\\');
            part.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' || c == '+' {
            rdns.last_mut()?.push(attribute(&part)?);
            part.clear();
            if c == ',' {
                rdns.push(Vec::new());
            }
        } else {
            part.push(c);
        }
    }
    rdns.last_mut()?.push(attribute(&part)?);
    Some(rdns)
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
    fn a_dn_is_read_into_its_rdns() {
        let pair = |t: &str, v: &str| (t.to_owned(), v.to_owned());
        assert_eq!(
            parse_dn("CN=alice, ou=dev+O=bank\\, inc").unwrap(),
            vec![
                vec![pair("CN", "alice")],
                vec![pair("OU", "dev"), pair("O", "bank, inc")],
            ]
        );
        assert!(parse_dn("no equals sign").is_none());
        assert!(parse_dn("=value").is_none());
    }

    /// A certificate whose subject is, in certificate order, `DC=example, DC=com, O=bank,
    /// CN=bob, UID=b42`.
    fn certificate() -> Vec<u8> {
        use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};
        let dc = DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]);
        let mut dn = DistinguishedName::new();
        dn.push(
            dc.clone(),
            DnValue::Ia5String("example".try_into().unwrap()),
        );
        dn.push(DnType::OrganizationName, "bank");
        dn.push(DnType::CommonName, "bob");
        dn.push(
            DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]),
            DnValue::Utf8String("b42".into()),
        );
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_subject_renders_and_matches_as_go_and_nats_server_do() {
        let cert = PeerCert::parse(&certificate()).unwrap();
        assert_eq!(cert.subject, "CN=bob,O=bank");
        assert_eq!(cert.domain_components, "DC=example");
        assert_eq!(
            cert.display_subject,
            format!(
                "CN=bob,O=bank,0.9.2342.19200300.100.1.1=#{},0.9.2342.19200300.100.1.25=#{}",
                der_hex("b42"),
                der_hex("example")
            ),
        );
        assert_eq!(
            cert.candidate_names(),
            vec![
                "CN=bob,O=bank,DC=example".to_owned(),
                "CN=bob,O=bank".to_owned()
            ]
        );
        // UID is outside the attributes nats-server matches a DN by: no DN match at all.
        assert!(cert.rdns.is_none());
        assert!(!cert.subject_is("CN=bob,O=bank"));
    }

    #[test]
    fn dn_matching_ignores_rdn_order_but_not_value_case() {
        let pair = |t: &str, v: &str| vec![(t.to_owned(), v.to_owned())];
        let cert = PeerCert {
            rdns: Some(vec![pair("OU", "dev"), pair("CN", "bob")]),
            ..PeerCert::default()
        };
        assert!(cert.subject_is("CN=bob,OU=dev"));
        assert!(cert.subject_is("ou=dev, cn=bob"));
        assert!(!cert.subject_is("CN=Bob,OU=dev"));
        assert!(!cert.subject_is("CN=bob"));
        assert!(!cert.subject_is("CN=bob+OU=dev"));
    }

    #[test]
    fn go_encodes_printable_strings_and_others_as_utf8() {
        assert_eq!(der_hex("ab"), "13026162");
        assert_eq!(der_hex("a@b"), "0c03614062");
    }
}
