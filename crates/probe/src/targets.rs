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

#[cfg(test)]
mod tests {
    #[test]
    fn every_default_target_is_measurable() {
        for t in super::DEFAULT_TARGETS {
            assert!(crate::parse_input(t).is_ok(), "{t}");
        }
    }
}
