//! The one real Pakistani Web Connectivity measurement in the corpus: mask.icloud.com, 2023-07-06
//! (`testdata/ooni/*_PK_webconnectivity_*.jsonc`, test keys only, with `//` comments; OONI's
//! expected flag is DNS blocking, discussed in ooni/probe#2517).
//!
//! The probe got Akamai (AS36183) addresses, the control Apple's (AS714); every TLS handshake
//! ended in `eof_error` and the control's own fetch failed too. OONI says `dns`; its maintainer
//! judged it most likely not censorship. censorwatch keeps OONI's `ooni_blocking` (that is what
//! OONI says) and calls the site `down`, explaining the DNS difference.

use censorwatch_model::{Measurement, OoniBlocking, Status};
use censorwatch_verdict::Analyzer;
use std::path::Path;

fn pk_measurement() -> Measurement {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ooni");
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy()
                .ends_with("_PK_webconnectivity_19f5e0d803cbaea7.jsonc")
        })
        .expect("the PK fixture");
    let text = std::fs::read_to_string(path).unwrap();
    let keys: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let doc = format!(
        r#"{{"test_name":"web_connectivity","probe_cc":"PK","input":"https://mask.icloud.com/","test_keys":{keys}}}"#
    );
    Measurement::from_slice(doc.as_bytes()).unwrap()
}

#[test]
fn mask_icloud_in_pakistan() {
    let m = pk_measurement();
    let keys = m.web_connectivity().unwrap().unwrap();
    let v = Analyzer::with_builtin_fingerprints().verdict(&m).unwrap();
    // OONI's own reading, recomputed from the observations.
    assert_eq!((keys.blocking, keys.accessible), (Some(OoniBlocking::Dns), Some(false)));
    assert_eq!((v.ooni_blocking, v.accessible), (Some(OoniBlocking::Dns), Some(false)));
    // censorwatch's: broken for everyone; the DNS difference is explained, not blamed.
    assert_eq!(v.status, Status::Down, "{v:?}");
    assert!(v.reasons.iter().any(|r| r.contains("eof_error")), "{:?}", v.reasons);
    assert!(
        v.reasons
            .iter()
            .any(|r| r.contains("172.224.19.") && r.contains("17.248.248.")),
        "{:?}",
        v.reasons
    );
}
