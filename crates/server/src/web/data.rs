//! Gathering each page's view model from the store: which queries a page runs, in order, on a
//! blocking thread. The rules for what the numbers mean live in [`super::view`]; this module
//! only asks and hands over.

use super::cache::{TtlCache, in_background};
use super::pages::{CountryView, EventView, HomeView, MeasurementView, PlatformView, SearchView};
use super::view::{self, Row, SearchTarget, Tally};
use censorwatch_detect::{Event, Outage, platform};
use censorwatch_store::{
    AggregateAxis, AggregateQuery, AggregateRow, DetectionKind, DetectionQuery, MeasurementQuery, Store, StoreError,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How far back from a country's newest measurement its grid and platform timelines look.
pub(crate) const SPAN: i64 = 14 * 86_400;

/// How far back from a country's newest measurement its status grid looks for each cell's
/// latest measurements: a cell not measured in that span shows "Not measured".
pub(crate) const GRID_SPAN: i64 = 2 * 86_400;

/// How long the list of countries with data, and each country's measured domains, are reused
/// as they are (each is a scan: of every measurement, of a country's); after that they are
/// refreshed in the background while still shown.
const LIST_TTL: Duration = Duration::from_secs(60);

/// Up to what age such a list is still shown while a background refresh runs; a list older
/// than this (nobody looked for that long) is recomputed while the request waits.
const LIST_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// Most events a page lists.
const EVENT_LIMIT: u32 = 50;

/// Why a page could not be built.
#[derive(Debug)]
pub(crate) enum PageError {
    /// No such thing (404), with what to say.
    NotFound(String),
    /// The store failed.
    Store(StoreError),
    /// A stored event or outage does not parse.
    Corrupt(String),
    /// The measurement was removed (410), and why.
    Gone(censorwatch_store::Redaction),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> PageError {
        PageError::Store(e)
    }
}

/// Network names seen in measurements, by (country, ASN): they change rarely, and looking one
/// up costs a query, so each is looked up once per server run.
#[derive(Default)]
pub(crate) struct NetworkNames {
    known: Mutex<HashMap<(String, u32), String>>,
}

impl NetworkNames {
    /// The names of `asns` in `cc` (`""` when no measurement names it).
    pub(crate) fn of(
        &self,
        store: &dyn Store,
        cc: &str,
        asns: impl IntoIterator<Item = u32>,
    ) -> Result<BTreeMap<u32, String>, StoreError> {
        let mut out = BTreeMap::new();
        for asn in asns {
            let key = (cc.to_owned(), asn);
            let cached = self.known.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
            let name = match cached {
                Some(name) => name,
                None => {
                    let page = store.query(&MeasurementQuery {
                        probe_cc: Some(cc.to_owned()),
                        probe_asn: Some(asn),
                        limit: 1,
                        ..MeasurementQuery::default()
                    })?;
                    let name = page
                        .results
                        .first()
                        .map(|r| r.meta.probe_network_name.clone())
                        .unwrap_or_default();
                    self.known
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key, name.clone());
                    name
                }
            };
            out.insert(asn, name);
        }
        Ok(out)
    }
}

/// What the pages reuse between requests.
pub(crate) struct Caches {
    pub(crate) names: NetworkNames,
    countries: TtlCache<(), Vec<(String, u64)>>,
    domains: TtlCache<String, BTreeMap<String, Vec<String>>>,
}

impl Default for Caches {
    fn default() -> Caches {
        Caches {
            names: NetworkNames::default(),
            // Empty lists (nothing stored yet) are not kept: the first measurements show at once.
            countries: TtlCache::new(LIST_TTL, LIST_MAX_AGE, |list| !list.is_empty()),
            domains: TtlCache::new(LIST_TTL, LIST_MAX_AGE, |map| !map.is_empty()),
        }
    }
}

fn row_of(r: AggregateRow) -> Row {
    Row {
        time: r.time,
        asn: r.probe_asn,
        domain: r.domain,
        method: r.method,
        cc: r.probe_cc,
        tally: Tally {
            measurements: r.measurements,
            ok: r.ok,
            blocked: r.blocked,
            down: r.down,
            inconclusive: r.inconclusive,
        },
    }
}

fn aggregate(store: &dyn Store, q: AggregateQuery) -> Result<Vec<Row>, StoreError> {
    Ok(store.aggregate(&q)?.into_iter().map(row_of).collect())
}

fn events(store: &dyn Store, q: DetectionQuery) -> Result<Vec<Event>, PageError> {
    store
        .detections(&q)?
        .iter()
        .map(|d| {
            serde_json::from_str::<Event>(&d.body)
                .map_err(|e| PageError::Corrupt(format!("stored event {} does not parse: {e}", d.id)))
        })
        .collect()
}

fn outages(store: &dyn Store, cc: &str) -> Result<Vec<Outage>, PageError> {
    let q = DetectionQuery {
        cc: Some(cc.to_owned()),
        limit: EVENT_LIMIT,
        ..DetectionQuery::all(DetectionKind::Outage)
    };
    store
        .detections(&q)?
        .iter()
        .map(|d| {
            serde_json::from_str::<Outage>(&d.body)
                .map_err(|e| PageError::Corrupt(format!("stored outage {} does not parse: {e}", d.id)))
        })
        .collect()
}

/// Countries with measurements, most measured first: (code, measurements). One scan of every
/// measurement (the covering index).
fn countries_by_measurements(store: &dyn Store) -> Result<Vec<(String, u64)>, StoreError> {
    let mut countries: Vec<(String, u64)> = aggregate(
        store,
        AggregateQuery {
            axes: vec![AggregateAxis::Cc],
            ..AggregateQuery::default()
        },
    )?
    .into_iter()
    .filter_map(|r| Some((r.cc?, r.tally.measurements)))
    .filter(|(_, n)| *n > 0)
    .collect();
    countries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(countries)
}

/// The countries with data, from the cache (see [`super::cache`]).
fn countries(store: &Arc<dyn Store>, caches: &Caches) -> Result<Vec<(String, u64)>, StoreError> {
    let store = Arc::clone(store);
    caches.countries.get_or_try(
        &(),
        Instant::now(),
        move || countries_by_measurements(store.as_ref()),
        in_background,
    )
}

/// Fills the home page's country list (run when the server starts, so that even the first
/// visitor does not wait for the scan).
pub(crate) fn warm(store: &Arc<dyn Store>, caches: &Caches) {
    if let Err(e) = countries(store, caches) {
        eprintln!("censorwatch: preparing the dashboard's country list failed ({e}); the home page will retry");
    }
}

/// The home page: countries by measurements, open events, open outages.
pub(crate) fn home(shared: &Arc<dyn Store>, caches: &Caches) -> Result<HomeView, PageError> {
    let countries = countries(shared, caches)?;
    let store = shared.as_ref();
    let open_events = events(
        store,
        DetectionQuery {
            open_only: true,
            limit: EVENT_LIMIT,
            ..DetectionQuery::all(DetectionKind::Event)
        },
    )?;
    let open_outages = store
        .detections(&DetectionQuery {
            open_only: true,
            limit: EVENT_LIMIT,
            ..DetectionQuery::all(DetectionKind::Outage)
        })?
        .iter()
        .map(|d| {
            serde_json::from_str::<Outage>(&d.body)
                .map_err(|e| PageError::Corrupt(format!("stored outage {} does not parse: {e}", d.id)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HomeView {
        countries,
        open_events,
        open_outages,
    })
}

/// The newest measurement time of a country, `None` without measurements.
fn newest(store: &dyn Store, cc: &str) -> Result<Option<i64>, StoreError> {
    let page = store.query(&MeasurementQuery {
        probe_cc: Some(cc.to_owned()),
        limit: 1,
        ..MeasurementQuery::default()
    })?;
    Ok(page.results.first().map(|r| r.meta.start_time))
}

/// The domains measured in `cc` since `since`, grouped by platform label (`x.com` →
/// `[pbs.twimg.com, x.com, …]`); reused for [`LIST_TTL`], then refreshed in the background.
fn platforms_of(
    store: &Arc<dyn Store>,
    caches: &Caches,
    cc: &str,
    since: i64,
) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
    let (store, owned_cc) = (Arc::clone(store), cc.to_owned());
    caches.domains.get_or_try(
        &cc.to_owned(),
        Instant::now(),
        move || domains_by_platform(store.as_ref(), &owned_cc, since),
        in_background,
    )
}

fn domains_by_platform(store: &dyn Store, cc: &str, since: i64) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
    let rows = aggregate(
        store,
        AggregateQuery {
            probe_cc: Some(cc.to_owned()),
            since: Some(since),
            axes: vec![AggregateAxis::Domain],
            ..AggregateQuery::default()
        },
    )?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows {
        if let Some(d) = r.domain.filter(|d| !d.is_empty()) {
            out.entry(view::platform_label(&d)).or_default().push(d);
        }
    }
    Ok(out)
}

/// Per (network, hour) counts of `domains` in `cc` from `since`.
fn timeline(
    store: &dyn Store,
    cc: &str,
    domains: &[String],
    since: i64,
    until: Option<i64>,
) -> Result<Vec<Row>, StoreError> {
    aggregate(
        store,
        AggregateQuery {
            probe_cc: Some(cc.to_owned()),
            domains: domains.to_vec(),
            since: Some(since),
            until,
            axes: vec![AggregateAxis::Asn, AggregateAxis::Time],
            bin_seconds: 3600,
            ..AggregateQuery::default()
        },
    )
}

/// The country page.
pub(crate) fn country(shared: &Arc<dyn Store>, caches: &Caches, cc: &str) -> Result<CountryView, PageError> {
    let store = shared.as_ref();
    let mut grid_rows = Vec::new();
    if let Some(newest) = newest(store, cc)? {
        for (label, domains) in platforms_of(shared, caches, cc, newest - SPAN)? {
            for mut r in timeline(store, cc, &domains, newest - GRID_SPAN, None)? {
                r.domain = Some(label.clone());
                grid_rows.push(r);
            }
        }
    }
    let grid = view::status_grid(&grid_rows);
    let events = events(
        store,
        DetectionQuery {
            cc: Some(cc.to_owned()),
            limit: EVENT_LIMIT,
            ..DetectionQuery::all(DetectionKind::Event)
        },
    )?;
    let outages = outages(store, cc)?;
    let mut asns: BTreeSet<u32> = grid.asns.iter().copied().collect();
    asns.extend(outages.iter().flat_map(|o| o.asns.iter().map(|a| a.asn)));
    let names = caches.names.of(store, cc, asns)?;
    Ok(CountryView {
        cc: cc.to_owned(),
        grid,
        names,
        events,
        outages,
    })
}

/// The platform page of `label` (a label domain) in `cc`, over `[since, until)` when given,
/// else the [`SPAN`] before the country's newest measurement.
pub(crate) fn platform(
    shared: &Arc<dyn Store>,
    caches: &Caches,
    cc: &str,
    label: &str,
    window: (Option<i64>, Option<i64>),
) -> Result<PlatformView, PageError> {
    let store = shared.as_ref();
    let platform_name = platform::platform_of(label).into_owned();
    let (since, until) = match window {
        (Some(s), u) => (Some(s), u),
        (None, Some(u)) => (Some(u - SPAN), Some(u)),
        (None, None) => (newest(store, cc)?.map(|n| n - SPAN), None),
    };
    let mut domains = Vec::new();
    let mut rows = Vec::new();
    let mut methods = Vec::new();
    if let Some(since) = since {
        domains = platforms_of(shared, caches, cc, since)?
            .remove(label)
            .unwrap_or_default();
        if !domains.is_empty() {
            rows = timeline(store, cc, &domains, since, until)?;
            let method_rows = aggregate(
                store,
                AggregateQuery {
                    probe_cc: Some(cc.to_owned()),
                    domains: domains.clone(),
                    since: Some(since),
                    until,
                    axes: vec![AggregateAxis::Method],
                    ..AggregateQuery::default()
                },
            )?;
            methods = view::method_breakdown(&method_rows);
        }
    }
    let heatmap = view::heatmap(&rows);
    let mut per_asn: BTreeMap<u32, Tally> = BTreeMap::new();
    for r in &rows {
        if let Some(asn) = r.asn {
            per_asn.entry(asn).or_default().add(&r.tally);
        }
    }
    let events = events(
        store,
        DetectionQuery {
            cc: Some(cc.to_owned()),
            domain: Some(label.to_owned()),
            platform: Some(platform_name),
            limit: EVENT_LIMIT,
            ..DetectionQuery::all(DetectionKind::Event)
        },
    )?;
    let names = caches.names.of(store, cc, per_asn.keys().copied())?;
    Ok(PlatformView {
        cc: cc.to_owned(),
        label: label.to_owned(),
        domains,
        heatmap,
        per_asn: per_asn.into_iter().collect(),
        methods,
        events,
        names,
    })
}

/// Most measurements listed on an event page.
const EVENT_MEASUREMENTS: u32 = 20;

/// The event page.
pub(crate) fn event(store: &dyn Store, caches: &Caches, id: &str) -> Result<EventView, PageError> {
    let stored = store
        .detection(DetectionKind::Event, id)?
        .ok_or_else(|| PageError::NotFound(format!("There is no event with id “{id}”. Event ids change when late measurements move an event's start; look the event up from its country's page.")))?;
    let event: Event = serde_json::from_str(&stored.body)
        .map_err(|e| PageError::Corrupt(format!("stored event {id} does not parse: {e}")))?;
    let cc = event.cc.as_str().to_owned();
    let mut domains: Vec<String> = event.domains.iter().map(|d| d.to_string()).collect();
    if !domains.contains(&event.domain) {
        domains.push(event.domain.clone());
    }
    // Networks that measured the platform during the event (blocked or not).
    let measured = aggregate(
        store,
        AggregateQuery {
            probe_cc: Some(cc.clone()),
            domains: domains.clone(),
            since: Some(event.start),
            until: event.end.map(|e| e + 1),
            axes: vec![AggregateAxis::Asn],
            ..AggregateQuery::default()
        },
    )?
    .iter()
    .filter(|r| r.tally.measurements > 0)
    .count();
    let names = caches.names.of(store, &cc, event.asns.iter().map(|a| a.asn))?;
    let summary = view::event_summary(&event, measured, &|asn| names.get(&asn).cloned().unwrap_or_default());
    let mut measurements = Vec::new();
    for d in event.domains.iter().take(3) {
        let page = store.query(&MeasurementQuery {
            probe_cc: Some(cc.clone()),
            domain: Some(d.to_string()),
            since: Some(event.start),
            until: event.end.map(|e| e + 1),
            limit: EVENT_MEASUREMENTS,
            ..MeasurementQuery::default()
        })?;
        measurements.extend(page.results);
    }
    measurements.sort_by(|a, b| b.meta.start_time.cmp(&a.meta.start_time).then_with(|| b.id.cmp(&a.id)));
    measurements.truncate(EVENT_MEASUREMENTS as usize);
    Ok(EventView {
        event,
        summary,
        names,
        measurements,
    })
}

/// The measurement page.
pub(crate) fn measurement(store: &dyn Store, id: &str) -> Result<MeasurementView, PageError> {
    let record = store.get(id)?;
    if record.is_none() {
        if let Some(redaction) = store.redaction(id)? {
            return Err(PageError::Gone(redaction));
        }
    }
    let record = record.ok_or_else(|| {
        PageError::NotFound(format!(
            "There is no measurement with id “{id}”. Ids are the measurement_uid a submission returned."
        ))
    })?;
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&record.raw).ok();
    let pretty = match &parsed {
        Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
        None => String::from_utf8_lossy(&record.raw).into_owned(),
    };
    let test_keys = parsed
        .as_ref()
        .and_then(|v| v.get("test_keys"))
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let comparisons = view::compare_with_control(&test_keys);
    let control = match test_keys.get("control") {
        Some(c) if !c.is_null() => serde_json::to_string_pretty(c).unwrap_or_default(),
        _ => String::new(),
    };
    let mut probe = test_keys.clone();
    if let Some(o) = probe.as_object_mut() {
        o.remove("control");
    }
    let probe_keys = if probe.is_null() {
        String::new()
    } else {
        serde_json::to_string_pretty(&probe).unwrap_or_default()
    };
    Ok(MeasurementView {
        record,
        pretty,
        comparisons,
        probe_keys,
        control,
    })
}

/// Most measurements a search lists.
const SEARCH_LIMIT: u32 = 50;

/// What a search finds, or where it leads (`Err(path)`: redirect there).
pub(crate) fn search(store: &dyn Store, q: &str) -> Result<Result<SearchView, String>, PageError> {
    let q = q.trim();
    let mut view = SearchView {
        q: q.to_owned(),
        understood: String::new(),
        links: Vec::new(),
        measurements: Vec::new(),
    };
    if q.is_empty() {
        return Ok(Ok(view));
    }
    match view::parse_search(q) {
        SearchTarget::Country(cc) => return Ok(Err(format!("/country/{cc}"))),
        SearchTarget::Measurement(id) => {
            if store.get(&id)?.is_some() {
                return Ok(Err(format!("/measurement/{}", super::pages::enc(&id))));
            }
            view.understood = format!("No measurement has the id “{id}”.");
        }
        SearchTarget::Asn(asn) => {
            let page = store.query(&MeasurementQuery {
                probe_asn: Some(asn),
                limit: SEARCH_LIMIT,
                ..MeasurementQuery::default()
            })?;
            let ccs: BTreeSet<String> = page.results.iter().map(|r| r.meta.probe_cc.clone()).collect();
            view.understood = if page.results.is_empty() {
                format!("No measurement from network AS{asn}.")
            } else {
                format!("Network AS{asn}: its latest measurements.")
            };
            view.links = ccs
                .into_iter()
                .map(|cc| (format!("/country/{cc}"), format!("{} ({cc})", view::country_name(&cc))))
                .collect();
            view.measurements = page.results;
        }
        SearchTarget::Domain(domain) => {
            let label = view::platform_label(&domain);
            let page = store.query(&MeasurementQuery {
                domain: Some(domain.clone()),
                limit: SEARCH_LIMIT,
                ..MeasurementQuery::default()
            })?;
            let mut ccs: BTreeSet<String> = page.results.iter().map(|r| r.meta.probe_cc.clone()).collect();
            let platform_name = platform::platform_of(&domain).into_owned();
            let evs = events(
                store,
                DetectionQuery {
                    domain: Some(label.clone()),
                    platform: Some(platform_name),
                    limit: EVENT_LIMIT,
                    ..DetectionQuery::all(DetectionKind::Event)
                },
            )?;
            ccs.extend(evs.iter().map(|e| e.cc.as_str().to_owned()));
            view.understood = if ccs.is_empty() {
                format!("No measurement of {domain}.")
            } else {
                format!("{domain} (platform {label}), measured in:")
            };
            view.links = ccs
                .into_iter()
                .map(|cc| {
                    (
                        format!("/platform/{cc}/{}", super::pages::enc(&label)),
                        format!("{label} in {} ({cc})", view::country_name(&cc)),
                    )
                })
                .collect();
            view.links.extend(evs.iter().map(|e| {
                (
                    format!("/event/{}", super::pages::enc(&e.id)),
                    format!(
                        "Event: {} blocked in {} since {}",
                        e.domain,
                        e.cc,
                        view::human_time(e.start)
                    ),
                )
            }));
            view.measurements = page.results;
        }
        SearchTarget::Unknown(text) => {
            view.understood =
                format!("“{text}” is not a country code or name, a domain, an AS number or a measurement id.");
        }
    }
    Ok(Ok(view))
}
