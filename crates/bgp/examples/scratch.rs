//! scratch
use censorwatch_bgp::*;
use std::path::Path;
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (table, files) = if args[0] == "-" {
        (OriginTable::new(), &args[1..])
    } else {
        (OriginTable::load(Path::new(&args[0])).unwrap(), &args[1..])
    };
    let mut m = BgpMonitor::new(MonitorConfig::default(), table);
    let mut out = Vec::new();
    let t0 = std::time::Instant::now();
    let mut records = 0;
    for f in files {
        let r = match MrtReader::open(Path::new(f)) {
            Ok(r) => r,
            Err(e) => {
                println!("ERR {e}");
                continue;
            }
        };
        let rep = r.read_all(&mut |e| m.apply(e, &mut out));
        records += rep.records;
        println!(
            "{} records={} elems={} downs={} unsup={} malformed={} bytes={} first_malformed={:?} fatal={}",
            rep.file,
            rep.records,
            rep.elements,
            rep.peer_downs,
            rep.unsupported,
            rep.malformed,
            rep.bytes,
            rep.first_malformed.as_ref().map(|e| e.to_string()),
            rep.fatal.as_ref().map(|e| e.to_string()).unwrap_or_default()
        );
    }
    m.finish(&mut out);
    let el = t0.elapsed();
    let mut kinds = std::collections::BTreeMap::new();
    for s in &out {
        *kinds.entry(s.kind()).or_insert(0) += 1;
    }
    println!(
        "{kinds:?} {:?} records/s={:.0}",
        m.stats(),
        records as f64 / el.as_secs_f64()
    );
    for s in &out {
        if std::env::var("ALL").is_ok() || s.to_string().contains("208.65.15") || s.to_string().contains("AS17557 ") {
            println!("{s}");
        }
    }
}
