//! The strict pre-filter every SAMLResponse passes *before* signature verification
//! (SECURITY.md, "SAML SP", requirement 1).
//!
//! xmlsec dereferences `ds:Reference` URIs and runs transforms before it verifies anything,
//! so an unsigned forged response could make the server fetch URLs (SSRF), read
//! `/dev/zero`, or run XSLT. This filter only accepts the narrow shape real IdPs send: one
//! Response holding exactly one Assertion, at most one signature on each, each signature
//! referencing exactly its parent by ID with exclusive canonicalization and the
//! enveloped-signature transform, and nothing else that makes a verifier reach out, loop
//! or expand: no DOCTYPE or entities, no processing instructions, no comments, no
//! `ds:Object`/`Manifest`/`RetrievalMethod`/XPath/XPointer/XSLT, no encryption; bounded
//! size, depth and node count, and at most [`MAX_ATTRIBUTES_PER_ELEMENT`] (64) attributes
//! on one element and [`MAX_ATTRIBUTES`] (4,096) in all, counted by a byte scan before
//! the XML parser runs. Pure: text in, a verdict out.

use std::collections::HashSet;

use base64::Engine;
use roxmltree::{Document, Node, NodeType, ParsingOptions};

/// The decoded XML may not be larger than this (IdP responses are a few KiB; Entra with
/// 150 group ids stays under 64 KiB).
pub const MAX_XML_BYTES: usize = 192 * 1024;
pub const MAX_DEPTH: usize = 24;
pub const MAX_NODES: u32 = 10_000;
/// Attributes (namespace declarations included) on one element, and in the whole
/// document. Real IdPs stay far below: Entra and Okta put fewer than 20 on any element and
/// a few hundred in a response (three per AttributeValue with 150 group ids); pysaml2 a
/// handful per element. The per-element cap keeps roxmltree's quadratic duplicate check
/// cheap (18,000 attributes on one element cost seconds of CPU).
pub const MAX_ATTRIBUTES_PER_ELEMENT: usize = 64;
pub const MAX_ATTRIBUTES: usize = 4_096;

const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
/// The signature algorithms accepted (the same list samael is given): SHA-2 only.
pub const SIGNATURE_METHODS: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
];
const DIGEST_METHODS: &[&str] = &[
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];

/// Why a response was refused. The message is for the admin log; users see a generic page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("the SAMLResponse is larger than {MAX_XML_BYTES} bytes")]
    TooLarge,
    #[error("the SAMLResponse is not valid base64")]
    Base64,
    #[error("the SAMLResponse is not UTF-8 XML")]
    NotUtf8,
    #[error("the SAMLResponse is not well-formed XML: {0}")]
    Malformed(String),
    #[error("the SAMLResponse has a DOCTYPE or entity declarations")]
    Doctype,
    #[error("the SAMLResponse has a processing instruction")]
    ProcessingInstruction,
    #[error("the SAMLResponse has an XML comment")]
    Comment,
    #[error("the SAMLResponse nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the document is not a SAML 2.0 Response")]
    NotAResponse,
    #[error("the Response must hold exactly one Assertion as a direct child, found {0}")]
    AssertionCount(usize),
    #[error("encrypted elements are not supported; configure the IdP not to encrypt")]
    Encrypted,
    #[error("the Response and its Assertion are both unsigned")]
    Unsigned,
    #[error("a signature may only sign the Response or its Assertion, once each")]
    SignaturePlacement,
    #[error("a signature must reference exactly its parent element ({0})")]
    Reference(String),
    #[error("signature algorithm or transform not allowed: {0}")]
    Algorithm(String),
    #[error("the SAMLResponse contains a forbidden element: {0}")]
    Forbidden(String),
    #[error("element IDs are missing or repeated: {0}")]
    Ids(String),
    #[error("the SAMLResponse has too many XML attributes: {0}")]
    TooManyAttributes(String),
}

/// A response that passed the filter, with what later stages need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vetted {
    pub xml: String,
    pub response_id: String,
    pub assertion_id: String,
    pub response_signed: bool,
    pub assertion_signed: bool,
}

/// Decodes the `SAMLResponse` form field: whitespace (line-wrapped base64, which samael
/// refuses) is removed first.
pub fn decode(form_value: &str) -> Result<String, Rejected> {
    // Refuse before copying anything: base64 of the largest allowed XML, line-wrapped.
    if form_value.len() > MAX_XML_BYTES / 3 * 4 * 11 / 10 + 1024 {
        return Err(Rejected::TooLarge);
    }
    let compact: String = form_value
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    // Base64 grows data by 4/3: refuse before decoding anything too large.
    if compact.len() / 4 * 3 > MAX_XML_BYTES + 3 {
        return Err(Rejected::TooLarge);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| Rejected::Base64)?;
    String::from_utf8(bytes).map_err(|_| Rejected::NotUtf8)
}

/// Decodes and vets a `SAMLResponse` form field.
pub fn vet_form_value(form_value: &str) -> Result<Vetted, Rejected> {
    vet(&decode(form_value)?)
}

/// Vets decoded response XML.
pub fn vet(xml: &str) -> Result<Vetted, Rejected> {
    if xml.len() > MAX_XML_BYTES {
        return Err(Rejected::TooLarge);
    }
    let lower = xml.to_ascii_lowercase();
    if lower.contains("<!doctype") || lower.contains("<!entity") {
        return Err(Rejected::Doctype);
    }
    attribute_counts(xml)?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(xml, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => Rejected::Doctype,
        roxmltree::Error::NodesLimitReached => Rejected::TooLarge,
        other => Rejected::Malformed(other.to_string()),
    })?;

    check_nodes(&doc)?;

    let response = doc.root_element();
    if !is(response, PROTOCOL, "Response") {
        return Err(Rejected::NotAResponse);
    }
    let response_id = response
        .attribute("ID")
        .ok_or_else(|| Rejected::Ids("the Response has no ID".into()))?;

    let assertions: Vec<Node<'_, '_>> = doc
        .descendants()
        .filter(|n| is(*n, ASSERTION, "Assertion"))
        .collect();
    let direct = assertions
        .iter()
        .filter(|a| a.parent() == Some(response))
        .count();
    if assertions.len() != 1 || direct != 1 {
        return Err(Rejected::AssertionCount(assertions.len()));
    }
    let assertion = assertions[0];
    let assertion_id = assertion
        .attribute("ID")
        .ok_or_else(|| Rejected::Ids("the Assertion has no ID".into()))?;

    let (response_signed, assertion_signed) =
        check_signatures(&doc, response, response_id, assertion, assertion_id)?;
    if !response_signed && !assertion_signed {
        return Err(Rejected::Unsigned);
    }
    Ok(Vetted {
        xml: xml.to_string(),
        response_id: response_id.to_string(),
        assertion_id: assertion_id.to_string(),
        response_signed,
        assertion_signed,
    })
}

/// Every element: no processing instructions or comments, bounded depth, nothing
/// encrypted, no dangerous ds: elements, and no ID twice.
fn check_nodes(doc: &Document<'_>) -> Result<(), Rejected> {
    let mut ids = HashSet::new();
    for node in doc.descendants() {
        match node.node_type() {
            NodeType::PI => return Err(Rejected::ProcessingInstruction),
            NodeType::Comment => return Err(Rejected::Comment),
            NodeType::Element => {}
            _ => continue,
        }
        if node.ancestors().count() > MAX_DEPTH {
            return Err(Rejected::TooDeep);
        }
        let ns = node.tag_name().namespace().unwrap_or("");
        let name = node.tag_name().name();
        if ns == XENC || name.starts_with("Encrypted") {
            return Err(Rejected::Encrypted);
        }
        if ns == DSIG
            && matches!(
                name,
                "Object" | "Manifest" | "RetrievalMethod" | "XPath" | "SignatureProperties"
            )
        {
            return Err(Rejected::Forbidden(format!("ds:{name}")));
        }
        if let Some(id) = node.attribute("ID")
            && !ids.insert(id)
        {
            return Err(Rejected::Ids(format!("ID {id:?} appears twice")));
        }
    }
    Ok(())
}

/// At most one signature each on the Response and the Assertion, nowhere else; returns
/// which of them are signed.
fn check_signatures(
    doc: &Document<'_>,
    response: Node<'_, '_>,
    response_id: &str,
    assertion: Node<'_, '_>,
    assertion_id: &str,
) -> Result<(bool, bool), Rejected> {
    let mut response_signed = false;
    let mut assertion_signed = false;
    for sig in doc.descendants().filter(|n| is(*n, DSIG, "Signature")) {
        let parent = sig.parent().ok_or(Rejected::SignaturePlacement)?;
        let (signed, parent_id) = if parent == response {
            (&mut response_signed, response_id)
        } else if parent == assertion {
            (&mut assertion_signed, assertion_id)
        } else {
            return Err(Rejected::SignaturePlacement);
        };
        if *signed {
            return Err(Rejected::SignaturePlacement);
        }
        *signed = true;
        check_signature(sig, parent_id)?;
    }
    Ok((response_signed, assertion_signed))
}

/// Counts attributes (namespace declarations included) per start tag and in total with
/// one pass over the bytes, before roxmltree parses: its duplicate-attribute check is
/// quadratic in the attributes of one element. Every attribute has exactly one quoted
/// value, so opening quotes inside a start tag are counted; comments, CDATA, processing
/// instructions and end tags are skipped whole. Malformed input may be miscounted, but
/// only upwards of what roxmltree would accept, and roxmltree refuses it anyway.
fn attribute_counts(xml: &str) -> Result<(), Rejected> {
    let bytes = xml.as_bytes();
    let mut total = 0usize;
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|b| *b == b'<') {
        i += offset + 1;
        let rest = &bytes[i..];
        let skip_to: Option<&[u8]> = if rest.starts_with(b"!--") {
            Some(b"-->")
        } else if rest.starts_with(b"![CDATA[") {
            Some(b"]]>")
        } else if rest.starts_with(b"?") {
            Some(b"?>")
        } else if rest.starts_with(b"/") || rest.starts_with(b"!") {
            Some(b">")
        } else {
            None
        };
        if let Some(end) = skip_to {
            match rest.windows(end.len()).position(|w| w == end) {
                Some(at) => i += at + end.len(),
                None => return Ok(()),
            }
            continue;
        }
        // A start tag: count opening quotes until the `>` outside a quoted value.
        let mut in_element = 0usize;
        let mut quote = None;
        while let Some(&b) = bytes.get(i) {
            i += 1;
            match (quote, b) {
                (Some(q), _) if b == q => quote = None,
                (Some(_), _) => {}
                (None, b'"' | b'\'') => {
                    quote = Some(b);
                    in_element += 1;
                    total += 1;
                    if in_element > MAX_ATTRIBUTES_PER_ELEMENT {
                        return Err(Rejected::TooManyAttributes(format!(
                            "more than {MAX_ATTRIBUTES_PER_ELEMENT} on one element"
                        )));
                    }
                    if total > MAX_ATTRIBUTES {
                        return Err(Rejected::TooManyAttributes(format!(
                            "more than {MAX_ATTRIBUTES} in the document"
                        )));
                    }
                }
                (None, b'>') => break,
                (None, _) => {}
            }
        }
    }
    Ok(())
}

fn is(node: Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(ns) && node.tag_name().name() == name
}

fn children<'a, 'i>(node: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |c| is(*c, DSIG, name))
}

/// One signature: exactly one Reference, to `#parent_id`, exclusive c14n without comments,
/// and only the enveloped-signature and exclusive-c14n transforms.
fn check_signature(sig: Node<'_, '_>, parent_id: &str) -> Result<(), Rejected> {
    let mut signed_info = children(sig, "SignedInfo");
    let info = signed_info
        .next()
        .ok_or_else(|| Rejected::Reference("no SignedInfo".into()))?;
    if signed_info.next().is_some() {
        return Err(Rejected::Reference("two SignedInfo elements".into()));
    }
    let c14n = children(info, "CanonicalizationMethod")
        .next()
        .and_then(|c| c.attribute("Algorithm"))
        .unwrap_or("");
    if c14n != EXC_C14N {
        return Err(Rejected::Algorithm(format!("canonicalization {c14n:?}")));
    }
    let method = children(info, "SignatureMethod")
        .next()
        .and_then(|m| m.attribute("Algorithm"))
        .unwrap_or("");
    if !SIGNATURE_METHODS.contains(&method) {
        return Err(Rejected::Algorithm(format!("signature method {method:?}")));
    }
    let references: Vec<Node<'_, '_>> = children(info, "Reference").collect();
    if references.len() != 1 {
        return Err(Rejected::Reference(format!(
            "{} references",
            references.len()
        )));
    }
    let uri = references[0].attribute("URI").unwrap_or("");
    if uri != format!("#{parent_id}") {
        return Err(Rejected::Reference(format!(
            "URI {uri:?} instead of \"#{parent_id}\""
        )));
    }
    let digest = children(references[0], "DigestMethod")
        .next()
        .and_then(|d| d.attribute("Algorithm"))
        .unwrap_or("");
    if !DIGEST_METHODS.contains(&digest) {
        return Err(Rejected::Algorithm(format!("digest method {digest:?}")));
    }
    for transforms in children(references[0], "Transforms") {
        for t in transforms.children().filter(Node::is_element) {
            let algorithm = t.attribute("Algorithm").unwrap_or("");
            if !is(t, DSIG, "Transform") || !(algorithm == ENVELOPED || algorithm == EXC_C14N) {
                return Err(Rejected::Algorithm(format!("transform {algorithm:?}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response shaped like Entra's: assertion-only signature.
    fn response(assertion_sig: &str, response_sig: &str, extra: &str) -> String {
        format!(
            r##"<?xml version="1.0" encoding="UTF-8"?><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1" Version="2.0" IssueInstant="2026-11-22T12:00:00Z" Destination="https://gw/saml/acs/c1" InResponseTo="id-abc"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">https://idp</saml:Issuer>{response_sig}<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" IssueInstant="2026-11-22T12:00:00Z" Version="2.0"><Issuer>https://idp</Issuer>{assertion_sig}<Subject><NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">ryan@contoso.com</NameID></Subject>{extra}</Assertion></samlp:Response>"##
        )
    }

    fn signature(uri: &str, c14n: &str, transforms: &str, extra: &str) -> String {
        format!(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{c14n}"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="{uri}"><ds:Transforms>{transforms}</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo>{extra}</ds:Signature>"#
        )
    }

    const STD_TRANSFORMS: &str = r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#;

    fn good_sig(uri: &str) -> String {
        signature(uri, EXC_C14N, STD_TRANSFORMS, "")
    }

    #[test]
    fn only_sha2_signatures_and_digests_pass() {
        let sha1_sig = good_sig("#_a1").replace(
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        );
        assert!(matches!(
            vet(&response(&sha1_sig, "", "")),
            Err(Rejected::Algorithm(m)) if m.contains("rsa-sha1")
        ));
        let sha1_digest = good_sig("#_a1").replace(
            "http://www.w3.org/2001/04/xmlenc#sha256",
            "http://www.w3.org/2000/09/xmldsig#sha1",
        );
        assert!(matches!(
            vet(&response(&sha1_digest, "", "")),
            Err(Rejected::Algorithm(m)) if m.contains("sha1")
        ));
        let hmac = good_sig("#_a1").replace(
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
        );
        assert!(vet(&response(&hmac, "", "")).is_err());
    }

    #[test]
    fn accepts_the_shapes_idps_send() {
        let entra = vet(&response(&good_sig("#_a1"), "", "")).expect("assertion-only signature");
        assert!(entra.assertion_signed && !entra.response_signed);
        assert_eq!(
            (entra.response_id.as_str(), entra.assertion_id.as_str()),
            ("_r1", "_a1")
        );
        let okta = vet(&response(&good_sig("#_a1"), &good_sig("#_r1"), "")).expect("both signed");
        assert!(okta.assertion_signed && okta.response_signed);
        vet(&response("", &good_sig("#_r1"), "")).expect("response-only signature");
    }

    #[test]
    fn line_wrapped_base64_is_accepted_and_garbage_refused() {
        let xml = response(&good_sig("#_a1"), "", "");
        let b64 = base64::engine::general_purpose::STANDARD.encode(xml.as_bytes());
        let wrapped: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\r\n", String::from_utf8_lossy(c)))
            .collect();
        assert!(vet_form_value(&wrapped).is_ok());
        assert_eq!(vet_form_value("not base64 at all!"), Err(Rejected::Base64));
        let huge = "A".repeat(8 * 1024 * 1024);
        assert_eq!(
            vet_form_value(&huge),
            Err(Rejected::TooLarge),
            "5 MB responses are refused before decoding"
        );
    }

    #[test]
    fn refuses_doctype_entities_processing_instructions_and_comments() {
        let good = response(&good_sig("#_a1"), "", "");
        let with_doctype = good.replacen("?>", "?><!DOCTYPE r [<!ENTITY x \"y\">]>", 1);
        assert_eq!(vet(&with_doctype), Err(Rejected::Doctype));
        let bare_doctype = good.replacen("?>", "?><!DOCTYPE r>", 1);
        assert_eq!(vet(&bare_doctype), Err(Rejected::Doctype));
        let entity_ref = good.replace("ryan@contoso.com", "&xxe;");
        assert!(vet(&entity_ref).is_err(), "undeclared entity");
        let pi = good.replace("<Subject>", "<?xml-stylesheet href=\"x\"?><Subject>");
        assert_eq!(vet(&pi), Err(Rejected::ProcessingInstruction));
        let comment = good.replace("ryan@contoso.com", "ryan@contoso.com<!---->.evil.example");
        assert_eq!(
            vet(&comment),
            Err(Rejected::Comment),
            "comment injection in NameID"
        );
    }

    #[test]
    fn refuses_references_that_reach_out_or_point_elsewhere() {
        for uri in [
            "http://169.254.169.254/latest/meta-data",
            "file:///dev/zero",
            "#_r1",
            "",
            "#xpointer(/)",
            "#_other",
        ] {
            let r = vet(&response(&good_sig(uri), "", ""));
            assert!(matches!(r, Err(Rejected::Reference(_))), "{uri}: {r:?}");
        }
        let two_refs = good_sig("#_a1").replace(
            "</ds:SignedInfo>",
            r##"<ds:Reference URI="#_a1"/></ds:SignedInfo>"##,
        );
        assert!(matches!(
            vet(&response(&two_refs, "", "")),
            Err(Rejected::Reference(_))
        ));
    }

    #[test]
    fn refuses_dangerous_transforms_and_algorithms() {
        let xslt = signature(
            "#_a1",
            EXC_C14N,
            r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>"#,
            "",
        );
        assert!(matches!(
            vet(&response(&xslt, "", "")),
            Err(Rejected::Algorithm(_))
        ));
        let xpath = signature(
            "#_a1",
            EXC_C14N,
            r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>1</ds:XPath></ds:Transform>"#,
            "",
        );
        assert!(vet(&response(&xpath, "", "")).is_err());
        let comments = signature(
            "#_a1",
            "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
            STD_TRANSFORMS,
            "",
        );
        assert!(matches!(
            vet(&response(&comments, "", "")),
            Err(Rejected::Algorithm(_))
        ));
        for extra in [
            "<ds:Object>x</ds:Object>",
            "<ds:Object><ds:Manifest/></ds:Object>",
            r#"<ds:KeyInfo><ds:RetrievalMethod URI="http://evil/"/></ds:KeyInfo>"#,
        ] {
            let r = vet(&response(
                &signature("#_a1", EXC_C14N, STD_TRANSFORMS, extra),
                "",
                "",
            ));
            assert!(matches!(r, Err(Rejected::Forbidden(_))), "{extra}: {r:?}");
        }
    }

    #[test]
    fn refuses_wrapping_shapes() {
        // A second (attacker) assertion beside the signed one.
        let two = response(&good_sig("#_a1"), "", "").replace(
            "</samlp:Response>",
            r#"<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_evil"><Subject><NameID>ceo@contoso.com</NameID></Subject></Assertion></samlp:Response>"#,
        );
        assert_eq!(vet(&two), Err(Rejected::AssertionCount(2)));
        // The signed assertion moved into Extensions, an unsigned one in its place.
        let nested = response(
            "",
            &good_sig("#_r1"),
            r#"<Advice><Assertion ID="_inner"/></Advice>"#,
        );
        assert_eq!(vet(&nested), Err(Rejected::AssertionCount(2)));
        // A signature somewhere other than on the Response or Assertion.
        let misplaced = response(&good_sig("#_a1"), "", "")
            .replace("<Subject>", &format!("<Subject>{}", good_sig("#_a1")));
        assert_eq!(vet(&misplaced), Err(Rejected::SignaturePlacement));
        let doubled = response(&format!("{}{}", good_sig("#_a1"), good_sig("#_a1")), "", "");
        assert_eq!(vet(&doubled), Err(Rejected::SignaturePlacement));
        let dup_ids = response(&good_sig("#_a1"), "", "").replace("ID=\"_r1\"", "ID=\"_a1\"");
        assert!(matches!(vet(&dup_ids), Err(Rejected::Ids(_))));
    }

    #[test]
    fn refuses_unsigned_encrypted_and_foreign_documents() {
        assert_eq!(vet(&response("", "", "")), Err(Rejected::Unsigned));
        let encrypted = response(&good_sig("#_a1"), "", "").replace(
            "</samlp:Response>",
            r#"<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/></samlp:Response>"#,
        );
        assert_eq!(vet(&encrypted), Err(Rejected::Encrypted));
        assert_eq!(
            vet("<html><body>hi</body></html>"),
            Err(Rejected::NotAResponse)
        );
        assert!(matches!(
            vet("<samlp:Response"),
            Err(Rejected::Malformed(_))
        ));
    }

    #[test]
    fn depth_size_and_node_count_are_bounded() {
        let deep = response(
            &good_sig("#_a1"),
            "",
            &format!("{}{}", "<x>".repeat(100), "</x>".repeat(100)),
        );
        assert_eq!(vet(&deep), Err(Rejected::TooDeep));
        let big = response(
            &good_sig("#_a1"),
            "",
            &"<Attribute/>".repeat(MAX_XML_BYTES / 12 + 1),
        );
        assert_eq!(vet(&big), Err(Rejected::TooLarge));
        let many = response(
            &good_sig("#_a1"),
            "",
            &"<a/>".repeat(MAX_NODES as usize + 1),
        );
        assert_eq!(vet(&many), Err(Rejected::TooLarge));
    }

    /// A small deterministic fuzz: thousands of mutations of a valid response (byte
    /// flips, truncations, splices) never panic.
    #[test]
    fn mutated_responses_never_panic() {
        let seed = response(&good_sig("#_a1"), &good_sig("#_r1"), "").into_bytes();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut bytes = seed.clone();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % bytes.len().max(1);
                match next() % 4 {
                    0 if !bytes.is_empty() => bytes[at] = next() as u8,
                    0 => {}
                    1 => bytes.truncate(at),
                    2 => bytes.insert(at, b"<>&\"'/?!-"[(next() % 9) as usize]),
                    _ => {
                        let from = (next() as usize) % seed.len();
                        let len = (next() as usize) % 64;
                        let piece = seed[from..(from + len).min(seed.len())].to_vec();
                        bytes.splice(at..at, piece);
                    }
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = vet(&text);
            let _ = vet_form_value(&text);
        }
    }

    /// Item 8.3 of issue 11: 18,000 attributes on one element are refused by the byte scan
    /// before roxmltree's duplicate-attribute check (quadratic) ever sees them.
    #[test]
    fn item8_3_many_attributes_on_one_element_are_refused_before_parsing() {
        let attrs: String = (0..18_000).map(|i| format!(" a{i}=\"\"")).collect();
        let xml = response(&good_sig("#_a1"), "", "").replacen(
            "<samlp:Status>",
            &format!("<samlp:Status{attrs}>"),
            1,
        );
        assert!(
            xml.len() <= MAX_XML_BYTES,
            "the size cap must not be what refuses it"
        );
        assert_eq!(
            vet(&xml).err(),
            Some(Rejected::TooManyAttributes(format!(
                "more than {MAX_ATTRIBUTES_PER_ELEMENT} on one element"
            )))
        );
    }

    #[test]
    fn item8_3_attributes_are_capped_in_total() {
        let per = "<x a=\"1\" b=\"2\" c=\"3\" d=\"4\"/>".repeat(MAX_ATTRIBUTES / 4 + 1);
        assert_eq!(
            vet(&response(&good_sig("#_a1"), "", &per)).err(),
            Some(Rejected::TooManyAttributes(format!(
                "more than {MAX_ATTRIBUTES} in the document"
            )))
        );
    }

    /// What pysaml2 (and Entra with 150 group ids) send: namespace declarations and
    /// `xsi:type` on every AttributeValue stay well inside the caps, and quoted `>` or
    /// quotes in text, CDATA and attribute values do not confuse the count.
    #[test]
    fn item8_3_pysaml2_shaped_responses_pass_the_attribute_caps() {
        let values: String = (0..150)
            .map(|i| {
                format!(
                    r#"<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">group-{i} "quoted" &gt; 'x'</saml:AttributeValue>"#
                )
            })
            .collect();
        let statement = format!(
            r#"<saml:AttributeStatement xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Attribute Name="email" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic" FriendlyName="mail"><saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string" note="a > b">ryan@contoso.com</saml:AttributeValue></saml:Attribute><saml:Attribute Name="groups" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">{values}<saml:AttributeValue><![CDATA[<x a="1" b='2'>]]></saml:AttributeValue></saml:Attribute></saml:AttributeStatement>"#
        );
        let xml = response(&good_sig("#_a1"), &good_sig("#_r1"), &statement).replacen(
            "<samlp:Response ",
            r#"<samlp:Response xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" "#,
            1,
        );
        vet(&xml).expect("a pysaml2-shaped response passes");
        assert!(attribute_counts(&xml).is_ok());
    }
}
