//! The one rule for what an email-shaped identifier is and which domain it names, shared
//! by the SAML domain binding, SCIM's domain ownership check and `explain`.

/// What an identifier looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// No `@`: an opaque identifier (a UUID NameID, a Ping subject).
    Opaque,
    /// Exactly one `@` between a non-empty local part and a non-empty domain; the domain
    /// case-folded.
    Email { domain: String },
    /// More than one `@`, or an empty local part or domain: never accepted as an identity,
    /// since different parsers would disagree about its domain.
    Malformed,
}

pub fn shape(identifier: &str) -> Shape {
    let mut parts = identifier.trim().split('@');
    let (Some(local), Some(domain)) = (parts.next(), parts.next()) else {
        return Shape::Opaque;
    };
    if parts.next().is_some() || local.is_empty() || domain.is_empty() {
        return Shape::Malformed;
    }
    Shape::Email {
        domain: domain.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let email = |d: &str| Shape::Email { domain: d.into() };
        assert_eq!(shape("alice@Contoso.COM"), email("contoso.com"));
        assert_eq!(shape(" alice@contoso.com "), email("contoso.com"));
        assert_eq!(shape("00u1abc"), Shape::Opaque);
        assert_eq!(shape("boss@b.example@a.example"), Shape::Malformed);
        assert_eq!(shape("@a.example"), Shape::Malformed);
        assert_eq!(shape("alice@"), Shape::Malformed);
        assert_eq!(shape("@"), Shape::Malformed);
    }
}
