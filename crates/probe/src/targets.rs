//! The targets measured when none are given: the social platforms whose blocking censorwatch was
//! built to document (X/Twitter and its CDNs first — the 2024 Pakistan case — then the other
//! platforms national shutdowns usually hit).

/// The built-in target list.
pub const DEFAULT_TARGETS: &[&str] = &[
    "https://x.com/",
    "https://twitter.com/",
    "https://abs.twimg.com/",
    "https://pbs.twimg.com/",
    "https://video.twimg.com/",
    "https://api.x.com/",
    "https://t.co/",
    "https://www.facebook.com/",
    "https://www.youtube.com/",
    "https://www.whatsapp.com/",
    "https://web.whatsapp.com/",
    "https://telegram.org/",
    "https://web.telegram.org/",
    "https://signal.org/",
    "https://www.tiktok.com/",
    "https://www.instagram.com/",
];

/// Resources timed by the throughput test (see [`crate::throughput`]), one per host: the hosts
/// Russia throttled in 2021 (Xue et al., IMC 2021: Twitter's own names and its `twimg.com` CDN).
/// Stable paths of large static files on these hosts could not be checked from here (their bundle
/// names change with each release), so the defaults are the hosts' front pages; pass a real large
/// file with `--large-resource URL`. A small resource only makes the test unjudgeable (too short
/// to time), never a false `throttled`.
pub const LARGE_RESOURCES: &[&str] = &[
    "https://abs.twimg.com/",
    "https://pbs.twimg.com/",
    "https://video.twimg.com/",
    "https://x.com/",
    "https://twitter.com/",
    "https://t.co/",
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_default_target_is_measurable() {
        for t in super::DEFAULT_TARGETS.iter().chain(super::LARGE_RESOURCES) {
            assert!(crate::parse_input(t).is_ok(), "{t}");
        }
    }
}
