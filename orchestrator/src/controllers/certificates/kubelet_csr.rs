//! Upstream's checks of what a kubelet may ask for (`ValidateKubeletClientCSR`
//! and `ValidateKubeletServingCSR`): the request's subject, names and usages.
//! Pure: a PEM request and its usages in, the parsed facts or a reason out.

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509CertificationRequest};

/// The signer of kubelet client certificates.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The signer of kubelet serving certificates.
pub const SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// The prefix of every node's user name.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The organization (group) of every node.
pub const NODES_GROUP: &str = "system:nodes";

/// What a parsed request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestFacts {
    /// The subject's common name.
    pub common_name: String,
    /// The subject's organizations.
    pub organizations: Vec<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<std::net::IpAddr>,
    /// Email subject alternative names.
    pub emails: usize,
    /// URI subject alternative names.
    pub uris: usize,
}

/// Parses a PEM `CERTIFICATE REQUEST` (upstream's `ParseCSR`).
pub fn parse(pem: &[u8]) -> Result<RequestFacts, String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_owned())?;
    if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    }
    let (_, csr) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| format!("unable to parse the certificate request: {e}"))?;
    let subject = &csr.certification_request_info.subject;
    let mut facts = RequestFacts {
        common_name: subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned(),
        organizations: subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .map(str::to_owned)
            .collect(),
        ..RequestFacts::default()
    };
    for extension in csr.requested_extensions().into_iter().flatten() {
        let ParsedExtension::SubjectAlternativeName(san) = extension else {
            continue;
        };
        for name in &san.general_names {
            match name {
                GeneralName::DNSName(dns) => facts.dns_names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        facts.ip_addresses.push(v4.into());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        facts.ip_addresses.push(v6.into());
                    }
                }
                GeneralName::RFC822Name(_) => facts.emails += 1,
                GeneralName::URI(_) => facts.uris += 1,
                _ => {}
            }
        }
    }
    Ok(facts)
}

fn usages_are(usages: &[String], wanted: &[&str]) -> bool {
    let mut given: Vec<&str> = usages.iter().map(String::as_str).collect();
    given.sort_unstable();
    given.dedup();
    let mut wanted = wanted.to_vec();
    wanted.sort_unstable();
    given == wanted
}

fn node_subject(facts: &RequestFacts) -> Result<(), String> {
    if facts.organizations != [NODES_GROUP] {
        return Err("subject organization is not system:nodes".into());
    }
    if !facts.common_name.starts_with(NODE_USER_PREFIX) {
        return Err("subject common name does not begin with system:node:".into());
    }
    Ok(())
}

/// Whether the request is a kubelet client certificate request: subject
/// `O=system:nodes, CN=system:node:…`, no alternative names, and the usages
/// client auth + digital signature (+ key encipherment).
pub fn validate_client(facts: &RequestFacts, usages: &[String]) -> Result<(), String> {
    node_subject(facts)?;
    if !facts.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if facts.emails > 0 {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !facts.ip_addresses.is_empty() {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if facts.uris > 0 {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if !usages_are(
        usages,
        &["key encipherment", "digital signature", "client auth"],
    ) && !usages_are(usages, &["digital signature", "client auth"])
    {
        return Err(format!("usages did not match [{}]", usages.join(" ")));
    }
    Ok(())
}

/// Whether the request is a kubelet serving certificate request: a node
/// subject, at least one DNS or IP name and no others, server-auth usages.
pub fn validate_serving(facts: &RequestFacts, usages: &[String]) -> Result<(), String> {
    node_subject(facts)?;
    if facts.dns_names.is_empty() && facts.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if facts.emails > 0 {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if facts.uris > 0 {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if !usages_are(
        usages,
        &["key encipherment", "digital signature", "server auth"],
    ) && !usages_are(usages, &["digital signature", "server auth"])
    {
        return Err(format!("usages did not match [{}]", usages.join(" ")));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PEM request for `cn`/`orgs` with `dns` alternative names.
    pub(crate) fn request(cn: &str, orgs: &[&str], dns: &[&str]) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(dns.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        for org in orgs {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, *org);
        }
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn client_requests_are_checked_as_upstream() {
        let client = ["digital signature", "client auth"];
        let cases = vec![
            (
                "node",
                request("system:node:n1", &["system:nodes"], &[]),
                strings(&client),
                Ok::<(), String>(()),
            ),
            (
                "rsa usages",
                request("system:node:n1", &["system:nodes"], &[]),
                strings(&["key encipherment", "digital signature", "client auth"]),
                Ok(()),
            ),
            (
                "wrong organization",
                request("system:node:n1", &["system:masters"], &[]),
                strings(&client),
                Err("subject organization is not system:nodes".into()),
            ),
            (
                "wrong common name",
                request("admin", &["system:nodes"], &[]),
                strings(&client),
                Err("subject common name does not begin with system:node:".into()),
            ),
            (
                "DNS name",
                request("system:node:n1", &["system:nodes"], &["n1.example"]),
                strings(&client),
                Err("DNS subjectAltNames are not allowed".into()),
            ),
            (
                "server usage",
                request("system:node:n1", &["system:nodes"], &[]),
                strings(&["digital signature", "server auth"]),
                Err("usages did not match [digital signature server auth]".into()),
            ),
        ];
        for (name, pem, usages, want) in cases {
            let facts = parse(pem.as_bytes()).unwrap();
            assert_eq!(validate_client(&facts, &usages), want, "{name}");
        }
    }

    #[test]
    fn serving_requests_need_a_name() {
        let usages = strings(&["digital signature", "server auth"]);
        let with_name = parse(request("system:node:n1", &["system:nodes"], &["n1"]).as_bytes());
        assert_eq!(validate_serving(&with_name.unwrap(), &usages), Ok(()));
        let without = parse(request("system:node:n1", &["system:nodes"], &[]).as_bytes());
        assert_eq!(
            validate_serving(&without.unwrap(), &usages),
            Err("DNS or IP subjectAltName is required".into())
        );
    }

    #[test]
    fn parse_refuses_other_pem() {
        assert!(parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        assert!(parse(b"not pem").is_err());
    }
}
