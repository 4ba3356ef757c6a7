//! Bulk import of registry entities from CSV (one kind per file) or JSON (all kinds in one
//! document), with a dry run.
//!
//! Every row is checked — shape, field values, duplicates, references to entities already
//! stored or in the same import — and every bad row is reported with its row number, field
//! and reason. Nothing is written unless every row is good; then all rows are written in one
//! transaction.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{
    Device, Entity, EntityKind, FieldError, Gateway, Overlay, Record, Ref, Registry, RegistryError,
    Resident, Responder, Shift, Site, SiteFilter,
};

/// Most rows accepted in one import.
pub const MAX_IMPORT_ROWS: usize = 20_000;

/// One row of an import, not yet checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub kind: EntityKind,
    /// CSV: the line in the file (the header is line 1). JSON: position in the kind's array,
    /// from 1.
    pub row: u64,
    pub doc: Value,
}

/// Why one row cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowError {
    /// The kind of entity (`residents`, …).
    pub entity: String,
    pub row: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
}

/// The outcome of an import or a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Rows checked.
    pub rows: usize,
    /// Rows written (0 on a dry run or when any row is bad).
    pub imported: usize,
    pub errors: Vec<RowError>,
}

/// The input could not be read at all (not a per-row problem).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportFormatError {
    #[error("unknown entity kind {0:?}: expected sites, residents, responders, devices, gateways or shifts")]
    UnknownKind(String),
    #[error("CSV header: {0}")]
    Header(String),
    #[error("JSON: {0}")]
    Json(String),
    #[error("too many rows: at most {MAX_IMPORT_ROWS}")]
    TooManyRows,
}

fn csv_columns(kind: EntityKind) -> &'static [&'static str] {
    match kind {
        EntityKind::Site => &[
            "id",
            "kind",
            "name",
            "address",
            "timezone",
            "escalation_policy",
        ],
        EntityKind::Resident => &[
            "id",
            "site_id",
            "name",
            "conditions",
            "emergency_contacts",
            "away_until",
        ],
        EntityKind::Responder => &["id", "name", "role", "channels", "site_ids"],
        EntityKind::Device => &[
            "id",
            "kind",
            "site_id",
            "resident_id",
            "zone",
            "credentials_ref",
            "installed_on",
        ],
        EntityKind::Gateway => &["id", "site_id", "name", "installed_on"],
        EntityKind::Shift => &[
            "id",
            "site_id",
            "responder_id",
            "role",
            "type",
            "days",
            "start",
            "end",
        ],
    }
}

fn list(cell: &str) -> Vec<&str> {
    cell.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Turns one CSV cell into its JSON form. List cells are `;`-separated; a contact is
/// `name|phone|relation`, a channel is `kind:value`.
fn csv_cell(kind: EntityKind, column: &str, cell: &str) -> Result<Value, FieldError> {
    let strings = |c: &str| Value::from(list(c).into_iter().map(Value::from).collect::<Vec<_>>());
    Ok(match (kind, column) {
        (EntityKind::Resident, "conditions") | (EntityKind::Responder, "site_ids") => strings(cell),
        (EntityKind::Shift, "days") => strings(cell),
        (EntityKind::Resident, "emergency_contacts") => {
            let mut out = Vec::new();
            for (i, c) in list(cell).into_iter().enumerate() {
                let parts: Vec<&str> = c.split('|').map(str::trim).collect();
                let mut m = Map::new();
                match parts.as_slice() {
                    [name, phone] | [name, phone, ""] => {
                        m.insert("name".into(), (*name).into());
                        m.insert("phone".into(), (*phone).into());
                    }
                    [name, phone, relation] => {
                        m.insert("name".into(), (*name).into());
                        m.insert("phone".into(), (*phone).into());
                        m.insert("relation".into(), (*relation).into());
                    }
                    _ => {
                        return Err(FieldError::new(
                            format!("emergency_contacts[{i}]"),
                            "expected name|phone or name|phone|relation",
                        ))
                    }
                }
                out.push(Value::Object(m));
            }
            Value::Array(out)
        }
        (EntityKind::Responder, "channels") => {
            let mut out = Vec::new();
            for (i, c) in list(cell).into_iter().enumerate() {
                let Some((k, v)) = c.split_once(':') else {
                    return Err(FieldError::new(
                        format!("channels[{i}]"),
                        "expected kind:value, e.g. phone:+8613800000000",
                    ));
                };
                let key = match k.trim() {
                    "phone" | "sms" => "number",
                    "email" => "address",
                    "webhook" => "url",
                    other => {
                        return Err(FieldError::new(
                            format!("channels[{i}]"),
                            format!(
                                "unknown channel {other:?}: expected phone, sms, email or webhook"
                            ),
                        ))
                    }
                };
                let mut m = Map::new();
                m.insert("kind".into(), k.trim().into());
                m.insert(key.into(), v.trim().into());
                out.push(Value::Object(m));
            }
            Value::Array(out)
        }
        _ => Value::from(cell),
    })
}

/// Reads a CSV file of one kind. The header must name exactly the kind's columns (in any
/// order). Rows whose cells cannot be shaped are reported in `errors`.
pub fn parse_csv(
    kind: EntityKind,
    data: &[u8],
    errors: &mut Vec<RowError>,
) -> Result<Vec<ImportRow>, ImportFormatError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(data);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ImportFormatError::Header(e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    let expected = csv_columns(kind);
    for h in &header {
        if !expected.contains(&h.as_str()) {
            return Err(ImportFormatError::Header(format!(
                "unknown column {h:?}; {} files have {}",
                kind.table(),
                expected.join(",")
            )));
        }
    }
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        if i >= MAX_IMPORT_ROWS {
            return Err(ImportFormatError::TooManyRows);
        }
        let line = (i as u64) + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                errors.push(RowError {
                    entity: kind.table().into(),
                    row: line,
                    field: None,
                    reason: format!("unreadable CSV row: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map_or(line, |p| p.line());
        let mut obj = Map::new();
        let mut shift_schedule = Map::new();
        let mut bad = false;
        for (col, cell) in header.iter().zip(rec.iter()) {
            if cell.is_empty() {
                continue;
            }
            match csv_cell(kind, col, cell) {
                Ok(v)
                    if kind == EntityKind::Shift
                        && ["type", "days", "start", "end"].contains(&col.as_str()) =>
                {
                    shift_schedule.insert(col.clone(), v);
                }
                Ok(v) => {
                    obj.insert(col.clone(), v);
                }
                Err(e) => {
                    errors.push(RowError {
                        entity: kind.table().into(),
                        row: line,
                        field: Some(e.field),
                        reason: e.reason,
                    });
                    bad = true;
                }
            }
        }
        if kind == EntityKind::Shift {
            obj.insert("schedule".into(), Value::Object(shift_schedule));
        }
        if !bad {
            rows.push(ImportRow {
                kind,
                row: line,
                doc: Value::Object(obj),
            });
        }
    }
    Ok(rows)
}

/// Reads a JSON document `{"sites": [...], "residents": [...], ...}`; every key optional.
pub fn parse_json(data: &[u8]) -> Result<Vec<ImportRow>, ImportFormatError> {
    let doc: BTreeMap<String, Vec<Value>> =
        serde_json::from_slice(data).map_err(|e| ImportFormatError::Json(e.to_string()))?;
    let mut rows = Vec::new();
    for kind in EntityKind::ALL {
        if let Some(items) = doc.get(kind.table()) {
            for (i, item) in items.iter().enumerate() {
                rows.push(ImportRow {
                    kind,
                    row: i as u64 + 1,
                    doc: item.clone(),
                });
            }
        }
    }
    for key in doc.keys() {
        if EntityKind::from_table(key).is_none() {
            return Err(ImportFormatError::UnknownKind(key.clone()));
        }
    }
    if rows.len() > MAX_IMPORT_ROWS {
        return Err(ImportFormatError::TooManyRows);
    }
    Ok(rows)
}

struct Prepared {
    row: u64,
    record: Record,
    refs: Vec<Ref>,
}

fn prepare<E: Entity>(filter: &SiteFilter, row: &ImportRow) -> Result<Prepared, FieldError> {
    let e: E = serde_path_to_error::deserialize(row.doc.clone()).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { String::new() } else { path };
        FieldError::new(field, err.into_inner().to_string())
    })?;
    e.validate()?;
    match Registry::check_writable(filter, &e) {
        Ok(()) => {}
        Err(RegistryError::Invalid(f)) => return Err(f),
        Err(other) => return Err(FieldError::new(E::site_field(), other.to_string())),
    }
    let record = e
        .record()
        .map_err(|err| FieldError::new("", err.to_string()))?;
    Ok(Prepared {
        row: row.row,
        record,
        refs: e.refs(),
    })
}

impl Registry {
    /// Checks every row and, unless `dry_run` or any row is bad, writes them all in one
    /// transaction.
    pub async fn import(
        &self,
        filter: &SiteFilter,
        mut rows: Vec<ImportRow>,
        mut errors: Vec<RowError>,
        dry_run: bool,
    ) -> Result<ImportReport, RegistryError> {
        rows.sort_by_key(|r| (r.kind, r.row));
        let total = rows.len() + errors.len();
        let row_error = |kind: EntityKind, row: u64, f: FieldError| RowError {
            entity: kind.table().into(),
            row,
            field: (!f.field.is_empty()).then_some(f.field),
            reason: f.reason,
        };
        let mut prepared = Vec::new();
        let mut seen = HashSet::new();
        let mut overlay = Overlay::new();
        for row in &rows {
            let p = match row.kind {
                EntityKind::Site => prepare::<Site>(filter, row),
                EntityKind::Resident => prepare::<Resident>(filter, row),
                EntityKind::Responder => prepare::<Responder>(filter, row),
                EntityKind::Device => prepare::<Device>(filter, row),
                EntityKind::Gateway => prepare::<Gateway>(filter, row),
                EntityKind::Shift => prepare::<Shift>(filter, row),
            };
            let p = match p {
                Ok(p) => p,
                Err(f) => {
                    errors.push(row_error(row.kind, row.row, f));
                    continue;
                }
            };
            let key = (row.kind, p.record.id.clone());
            if !seen.insert(key.clone()) {
                errors.push(row_error(
                    row.kind,
                    row.row,
                    FieldError::new("id", format!("{:?} appears twice in this import", key.1)),
                ));
                continue;
            }
            if self.store().get(row.kind, &p.record.id).await?.is_some() {
                errors.push(row_error(
                    row.kind,
                    row.row,
                    FieldError::new("id", format!("{:?} already exists", key.1)),
                ));
                continue;
            }
            overlay.insert(key, p.record.doc.clone());
            prepared.push(p);
        }
        for p in &prepared {
            match self.check_refs(filter, p.refs.clone(), &overlay).await {
                Ok(()) => {}
                Err(RegistryError::Invalid(f)) => errors.push(row_error(p.record.kind, p.row, f)),
                Err(other) => return Err(other),
            }
        }
        errors.sort_by(|a, b| (a.row, &a.entity).cmp(&(b.row, &b.entity)));
        let mut report = ImportReport {
            dry_run,
            rows: total,
            imported: 0,
            errors,
        };
        if dry_run || !report.errors.is_empty() {
            return Ok(report);
        }
        let records: Vec<Record> = prepared.into_iter().map(|p| p.record).collect();
        self.store().import(&records).await?;
        self.changed().await;
        report.imported = records.len();
        Ok(report)
    }
}
