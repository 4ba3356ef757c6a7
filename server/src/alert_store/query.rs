//! The alert listing's filter and its SQL, shared by both backends (`?N` placeholders work in
//! SQLite, `$N` in PostgreSQL; everything else is the same SQL).

use crate::alert_store::{ms, severity_rank, to_i64, Result};
use crate::alerts::lifecycle::{Alert, AlertState};
use crate::alerts::{AlertKind, Severity, Timestamp};
use crate::ids::SiteId;

/// The most alerts one page returns.
pub const MAX_PAGE: u32 = 500;

/// Which alerts to list. An empty list of states, severities or kinds means "any".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertFilter {
    /// The sites the caller may see: `None` for every site, `Some(vec![])` for none.
    pub sites: Option<Vec<SiteId>>,
    pub states: Vec<AlertState>,
    pub severities: Vec<Severity>,
    pub kinds: Vec<AlertKind>,
    /// Alerts opened in `[opened_from, opened_until)`.
    pub opened_from: Option<Timestamp>,
    pub opened_until: Option<Timestamp>,
    /// Page size, capped at [`MAX_PAGE`].
    pub limit: u32,
    pub offset: u64,
}

impl Default for AlertFilter {
    fn default() -> Self {
        Self {
            sites: None,
            states: Vec::new(),
            severities: Vec::new(),
            kinds: Vec::new(),
            opened_from: None,
            opened_until: None,
            limit: 50,
            offset: 0,
        }
    }
}

impl AlertFilter {
    /// The alerts still needing attention: open, acknowledged, dispatched, on scene.
    pub fn open_states() -> Vec<AlertState> {
        AlertState::ALL
            .into_iter()
            .filter(|s| !s.is_closed())
            .collect()
    }
}

/// One page of a listing, most severe first, then oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPage {
    pub alerts: Vec<Alert>,
    /// How many alerts match the filter in all.
    pub total: u64,
}

/// A bound value of the listing's SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SqlValue {
    Text(String),
    Int(i64),
    SmallInt(i16),
}

/// `WHERE …` (possibly empty) with its values, and the page bounds.
pub(crate) struct ListingSql {
    pub where_clause: String,
    pub params: Vec<SqlValue>,
    pub limit: i64,
    pub offset: i64,
}

impl ListingSql {
    /// Builds the listing for placeholders `{prefix}{n}` (`$` for PostgreSQL, `?` for SQLite).
    pub fn build(f: &AlertFilter, prefix: char) -> Result<Self> {
        let mut conds: Vec<String> = Vec::new();
        let mut params: Vec<SqlValue> = Vec::new();
        let any_of = |column: &str, values: Vec<SqlValue>, params: &mut Vec<SqlValue>| {
            let mut holes = Vec::with_capacity(values.len());
            for v in values {
                params.push(v);
                holes.push(format!("{prefix}{}", params.len()));
            }
            if holes.is_empty() {
                // An empty list of visible sites matches nothing.
                "FALSE".to_owned()
            } else {
                format!("{column} IN ({})", holes.join(", "))
            }
        };
        if let Some(sites) = &f.sites {
            let v = sites
                .iter()
                .map(|s| SqlValue::Text(s.to_string()))
                .collect();
            conds.push(any_of("site", v, &mut params));
        }
        if !f.states.is_empty() {
            let v = f.states.iter().map(|s| SqlValue::Text(s.as_str().into()));
            conds.push(any_of("state", v.collect(), &mut params));
        }
        if !f.severities.is_empty() {
            let v = f
                .severities
                .iter()
                .map(|s| SqlValue::SmallInt(severity_rank(*s)));
            conds.push(any_of("severity_rank", v.collect(), &mut params));
        }
        if !f.kinds.is_empty() {
            let v = f.kinds.iter().map(|k| SqlValue::Text(k.as_str().into()));
            conds.push(any_of("kind", v.collect(), &mut params));
        }
        if let Some(from) = f.opened_from {
            params.push(SqlValue::Int(ms(from)?));
            conds.push(format!("opened_at >= {prefix}{}", params.len()));
        }
        if let Some(until) = f.opened_until {
            params.push(SqlValue::Int(ms(until)?));
            conds.push(format!("opened_at < {prefix}{}", params.len()));
        }
        let where_clause = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        Ok(Self {
            where_clause,
            params,
            limit: i64::from(f.limit.min(MAX_PAGE)),
            offset: to_i64("page offset", f.offset)?,
        })
    }

    /// The page query: `body` of each alert, most severe first, then oldest first.
    pub fn page_sql(&self, body: &str) -> String {
        format!(
            "SELECT {body} FROM alert_record {} \
             ORDER BY severity_rank, opened_at, id LIMIT {} OFFSET {}",
            self.where_clause, self.limit, self.offset
        )
    }

    pub fn count_sql(&self) -> String {
        format!("SELECT COUNT(*) FROM alert_record {}", self.where_clause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_filter_has_no_where_clause_and_a_capped_page() {
        let f = AlertFilter {
            limit: 10_000,
            ..AlertFilter::default()
        };
        let q = ListingSql::build(&f, '$').unwrap();
        assert_eq!(q.where_clause, "");
        assert_eq!(q.limit, i64::from(MAX_PAGE));
    }

    #[test]
    fn no_visible_sites_matches_nothing_and_placeholders_are_numbered_in_order() {
        let f = AlertFilter {
            sites: Some(vec![]),
            kinds: vec![AlertKind::Call, AlertKind::Fall],
            opened_from: Some(Timestamp::from_unix_s(5)),
            ..AlertFilter::default()
        };
        let q = ListingSql::build(&f, '?').unwrap();
        assert_eq!(
            q.where_clause,
            "WHERE FALSE AND kind IN (?1, ?2) AND opened_at >= ?3"
        );
        assert_eq!(q.params.len(), 3);
        assert_eq!(q.params[2], SqlValue::Int(5000));
    }
}
