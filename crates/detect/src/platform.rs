//! Which platform a domain belongs to, so that one block of a service (x.com, twitter.com, its
//! image CDN, its link shortener) is one event rather than one per host name. The table lists
//! only domains each service documents or visibly serves from; a domain not in it is its own
//! platform (lower-cased, trailing dot and a leading `www.` removed).

use std::borrow::Cow;

/// A service and the domains it is reached through. Each domain also covers its subdomains
/// (`twimg.com` covers `pbs.twimg.com`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// The platform's name, e.g. `"twitter"`.
    pub name: &'static str,
    /// Its domains; the first is the one events are labelled with.
    pub domains: &'static [&'static str],
}

/// The built-in platforms.
pub const PLATFORMS: &[Platform] = &[
    Platform {
        name: "twitter",
        domains: &["x.com", "twitter.com", "twimg.com", "t.co"],
    },
    Platform {
        name: "youtube",
        domains: &[
            "youtube.com",
            "youtu.be",
            "googlevideo.com",
            "ytimg.com",
            "youtube-nocookie.com",
        ],
    },
    Platform {
        name: "facebook",
        domains: &[
            "facebook.com",
            "fb.com",
            "fbcdn.net",
            "facebook.net",
            "fb.me",
            "messenger.com",
        ],
    },
    Platform {
        name: "whatsapp",
        domains: &["whatsapp.com", "whatsapp.net", "wa.me"],
    },
    Platform {
        name: "telegram",
        domains: &["telegram.org", "t.me", "telegram.me", "telegra.ph", "telesco.pe"],
    },
    Platform {
        name: "instagram",
        domains: &["instagram.com", "cdninstagram.com", "instagr.am"],
    },
    Platform {
        name: "tiktok",
        domains: &["tiktok.com", "tiktokcdn.com", "tiktokv.com"],
    },
    Platform {
        name: "signal",
        domains: &["signal.org", "whispersystems.org", "signal.me"],
    },
];

/// The domain in the form platforms are keyed by: lower case, no trailing dot, no leading `www.`.
pub fn normalize_domain(domain: &str) -> Cow<'_, str> {
    let trimmed = domain.trim_end_matches('.');
    let lower: Cow<'_, str> = if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    };
    match lower {
        Cow::Borrowed(s) => Cow::Borrowed(s.strip_prefix("www.").unwrap_or(s)),
        Cow::Owned(s) => match s.strip_prefix("www.") {
            Some(rest) => Cow::Owned(rest.to_owned()),
            None => Cow::Owned(s),
        },
    }
}

/// The built-in platform serving `domain`, if any.
pub fn find_platform(domain: &str) -> Option<&'static Platform> {
    let d = normalize_domain(domain);
    PLATFORMS.iter().find(|p| {
        p.domains.iter().any(|listed| {
            d.as_ref() == *listed
                || (d.len() > listed.len() && d.ends_with(listed) && d.as_bytes()[d.len() - listed.len() - 1] == b'.')
        })
    })
}

/// The platform name for `domain`: a built-in platform's name, or else the normalized domain.
pub fn platform_of(domain: &str) -> Cow<'static, str> {
    match find_platform(domain) {
        Some(p) => Cow::Borrowed(p.name),
        None => Cow::Owned(normalize_domain(domain).into_owned()),
    }
}

/// The domain an event of `platform` is labelled with: a built-in platform's first domain, or
/// the platform name itself (which is then a domain).
pub fn label_domain(platform: &str) -> &str {
    PLATFORMS
        .iter()
        .find(|p| p.name == platform)
        .map_or(platform, |p| p.domains[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn related_domains_share_a_platform() {
        for d in [
            "x.com",
            "twitter.com",
            "pbs.twimg.com",
            "t.co",
            "WWW.Twitter.com.",
            "api.x.com",
        ] {
            assert_eq!(platform_of(d), "twitter", "{d}");
        }
        assert_eq!(platform_of("i.ytimg.com"), "youtube");
        assert_eq!(platform_of("www.Example.org."), "example.org");
        // A suffix that is not at a label boundary is another site.
        assert_eq!(platform_of("notx.com"), "notx.com");
        assert_eq!(platform_of("tt.co"), "tt.co");
        assert_eq!(label_domain("twitter"), "x.com");
        assert_eq!(label_domain("example.org"), "example.org");
        assert_eq!(normalize_domain("x.com"), "x.com");
    }

    #[test]
    fn every_platform_domain_maps_back_to_it() {
        for p in PLATFORMS {
            for d in p.domains {
                assert_eq!(find_platform(d).map(|f| f.name), Some(p.name), "{d}");
            }
        }
    }
}
