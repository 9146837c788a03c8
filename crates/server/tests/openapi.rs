//! The OpenAPI document: served, parses as OpenAPI 3, and names every route the server's source
//! registers (read from the route modules' text, so a new `.route("/…")` without its entry
//! fails here), each with its methods; and every documented path is answered by something other
//! than the "no such endpoint" fallback.

mod common;

use common::TestServer;
use std::collections::{BTreeMap, BTreeSet};

/// The modules that register API routes (the HTML pages under `web/` are not API).
const ROUTE_SOURCES: &[(&str, &str)] = &[
    ("routes.rs", include_str!("../src/routes.rs")),
    ("api_routes.rs", include_str!("../src/api_routes.rs")),
    ("alerts/routes.rs", include_str!("../src/alerts/routes.rs")),
    ("admin_routes.rs", include_str!("../src/admin_routes.rs")),
];

/// (path, methods) of every `.route("PATH", get(…).post(…))` in `source`.
fn registered(source: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let after = rest.trim_start();
        let Some(path_start) = after.strip_prefix('"') else {
            continue;
        };
        let Some(end) = path_start.find('"') else { continue };
        let path = &path_start[..end];
        // The handler expression runs to the closing parenthesis of `.route(`.
        let mut depth = 1;
        let mut handler = String::new();
        for c in path_start[end + 1..].chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                break;
            }
            handler.push(c);
        }
        let methods: BTreeSet<String> = ["get", "post", "put", "delete", "patch"]
            .iter()
            .filter(|m| handler.contains(&format!("{m}(")))
            .map(|m| m.to_string())
            .collect();
        out.push((path.to_owned(), methods));
    }
    out
}

#[tokio::test]
async fn the_document_parses_and_covers_every_route() {
    let server = TestServer::default().await;
    let r = server.get("/api/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeMap<String, BTreeSet<String>> = paths
        .iter()
        .map(|(p, ops)| (p.clone(), ops.as_object().unwrap().keys().cloned().collect()))
        .collect();
    let mut seen = 0;
    for (file, source) in ROUTE_SOURCES {
        for (path, methods) in registered(source) {
            seen += 1;
            let Some(doc_methods) = documented.get(&path) else {
                panic!("{file} registers {path}, which /api/openapi.json does not document");
            };
            assert!(!methods.is_empty(), "{file}: no method found for {path}");
            for m in &methods {
                assert!(doc_methods.contains(m), "{path}: {m} is registered but not documented");
            }
            for (m, op) in paths[&path].as_object().unwrap() {
                assert!(op["responses"].is_object(), "{m} {path} has no responses");
                assert!(op["summary"].is_string(), "{m} {path} has no summary");
            }
        }
    }
    assert!(
        seen >= 17,
        "only {seen} routes found in the sources: is the scan broken?"
    );
    // Every $ref points at a component that exists.
    let text = r.text();
    for piece in text.split("\"$ref\":").skip(1) {
        let target = piece.trim_start().trim_start_matches('"');
        let target = &target[..target.find('"').unwrap()];
        let name = target.strip_prefix("#/components/schemas/").expect(target);
        assert!(doc["components"]["schemas"][name].is_object(), "dangling $ref {target}");
    }
    // Every documented path is an endpoint: not the fallback's 404.
    for path in documented.keys() {
        let concrete = path.replace("{report_id}", "bogus").replace("{id}", "bogus");
        let r = server.get(&concrete).await;
        let fallback = r.status == 404 && r.text().contains("no such endpoint");
        assert!(!fallback, "{path} is documented but not routed");
    }
    server.stop().await;
}
