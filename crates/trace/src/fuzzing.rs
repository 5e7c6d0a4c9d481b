//! Entry points of the fuzz targets in `fuzz/`; not part of the stable API.

use crate::{Paging, Query, TraceConfig, TraceLog, TraceRecord};

/// Decodes records from arbitrary bytes until the first error, then queries a log that holds
/// them: never panics.
pub fn decode_records(mut bytes: &[u8]) {
    let mut records = Vec::new();
    while let Ok((record, used)) = TraceRecord::decode(bytes) {
        assert!(used > 0 && used <= bytes.len());
        assert_eq!(
            TraceRecord::decode(&record.encode()).ok().map(|r| r.0),
            Some(record.clone())
        );
        records.push(record);
        bytes = &bytes[used..];
    }
    let mut log = TraceLog::in_memory(TraceConfig::default());
    if log.append(&records).is_ok() {
        for record in &records {
            let query = Query::Device {
                client_id: record.client_id.clone(),
            };
            let _ = log.query(&query, 0, u64::MAX, Paging::first(100));
        }
    }
}
