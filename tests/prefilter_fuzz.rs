//! Property-based fuzzing of the SAML pre-filter (SECURITY.md, "SAML SP"): for arbitrary
//! bytes, arbitrary base64, and valid responses spliced with hostile XML constructs, the
//! filter returns a verdict without panicking, and its peak heap use stays under a fixed
//! bound whatever the input's size or shape.
//!
//! Its own test binary, with a counting global allocator and a single test, so no other
//! test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use seatgate::saml::prefilter;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most heap one verdict may use beyond what existed before it: a few times the
/// largest accepted document (192 KiB), whatever the input.
const PEAK_BOUND: usize = 8 * 1024 * 1024;

/// Runs both entry points on `text` and returns the peak extra heap they used.
fn verdict_peak(text: &str) -> usize {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let _ = std::hint::black_box(prefilter::vet(text));
    let _ = std::hint::black_box(prefilter::vet_form_value(text));
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let encoded_cost = b64.len();
    let _ = std::hint::black_box(prefilter::vet_form_value(&b64));
    PEAK.load(Ordering::Relaxed)
        .saturating_sub(base)
        .saturating_sub(encoded_cost)
}

const VALID: &str = r##"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1" Version="2.0" IssueInstant="2026-11-22T12:00:00Z" Destination="https://gw/saml/acs/c1" InResponseTo="id-abc"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">https://idp</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" IssueInstant="2026-11-22T12:00:00Z" Version="2.0"><Issuer>https://idp</Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#_a1"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature><Subject><NameID>ryan@contoso.com</NameID></Subject><AttributeStatement><Attribute Name="groups"><AttributeValue>Engineers</AttributeValue></Attribute></AttributeStatement></Assertion></samlp:Response>"##;

/// Hostile constructs spliced into a valid response.
const FRAGMENTS: &[&str] = &[
    r#"<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>"#,
    "&a;",
    "&#x0;",
    "<!-- c -->",
    "<?xml-stylesheet href='x'?>",
    "<![CDATA[<Assertion/>]]>",
    r#"<ds:Object xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><Assertion ID="_a1"/></ds:Object>"#,
    r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"><xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform"/></ds:Transform>"#,
    r#"<ds:Reference URI="file:///dev/zero"/>"#,
    r#"<ds:Reference URI="http://169.254.169.254/latest"/>"#,
    r#"<ds:RetrievalMethod URI="http://evil/"/>"#,
    r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"/>"#,
    r#"<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_evil"><Subject><NameID>admin@contoso.com</NameID></Subject></Assertion>"#,
    r#" ID="_a1""#,
    r#" xmlns:ds="urn:evil""#,
    "<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>",
    "</a>",
    "</Assertion>",
    "\u{feff}",
    "\0",
];

fn spliced() -> impl Strategy<Value = String> {
    prop::collection::vec((0..VALID.len(), 0..FRAGMENTS.len(), 1..40usize), 1..6).prop_map(
        |edits| {
            let mut s = VALID.to_string();
            for (at, which, times) in edits {
                let mut at = at.min(s.len());
                while !s.is_char_boundary(at) {
                    at -= 1;
                }
                s.insert_str(at, &FRAGMENTS[which].repeat(times));
            }
            s
        },
    )
}

/// The largest peak seen, reported at the end.
static MAX_SEEN: AtomicUsize = AtomicUsize::new(0);

fn check(text: &str) -> Result<(), TestCaseError> {
    let peak = verdict_peak(text);
    MAX_SEEN.fetch_max(peak, Ordering::Relaxed);
    prop_assert!(
        peak < PEAK_BOUND,
        "peak heap {peak} bytes for a {}-byte input",
        text.len()
    );
    Ok(())
}

#[test]
fn the_pre_filter_never_panics_and_its_memory_stays_bounded() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..4096), |bytes| {
            check(&String::from_utf8_lossy(&bytes))
        })
        .expect("arbitrary bytes");
    runner
        .run(&"[A-Za-z0-9+/=\\s%]{0,4096}", |text| check(&text))
        .expect("base64-like text");
    runner
        .run(&spliced(), |xml| check(&xml))
        .expect("spliced responses");

    // The valid response itself passes (so the spliced cases start from an accepted shape).
    assert!(prefilter::vet(VALID).is_ok(), "{:?}", prefilter::vet(VALID));

    // Size and amplification: a 5 MB field, a document at the size limit made of many
    // small nodes, and deep nesting, each within the same bound.
    for text in [
        "A".repeat(5 * 1024 * 1024),
        format!(
            "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">{}</samlp:Response>",
            "<x/>".repeat(prefilter::MAX_XML_BYTES / 4 - 30)
        ),
        "<a>".repeat(60_000),
    ] {
        let peak = verdict_peak(&text);
        eprintln!("{}-byte input: peak heap {peak} bytes", text.len());
        assert!(
            peak < PEAK_BOUND,
            "peak heap {peak} bytes for a {}-byte input",
            text.len()
        );
    }
    eprintln!(
        "{cases} cases per strategy: largest peak heap {} bytes",
        MAX_SEEN.load(Ordering::Relaxed)
    );
}
