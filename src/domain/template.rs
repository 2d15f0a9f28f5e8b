//! Storage path templates: where a job's backup file should land, e.g.
//! `/backups/{company_name}/{city}/{database_name}/%Y/%m/%d.dump`.

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};

// The grammar: the parser below reads these constants, and [`pattern`] states the same
// grammar as a regular expression for the OpenAPI schema.

/// The placeholders a template may use, as `{name}`.
pub const PLACEHOLDERS: [&str; 5] = [
    "database_name",
    "company_name",
    "city",
    "agent_id_responsible",
    "job_id",
];
/// The time fields a template may use, as `%Y`; `%%` is a literal `%`.
pub const TIME_FIELDS: [char; 5] = ['Y', 'm', 'd', 'H', 'M'];
/// What separates path segments.
pub const SEPARATORS: [char; 2] = ['/', '\\'];
/// The one segment a template may not hold.
pub const PARENT_SEGMENT: &str = "..";
/// Shortest accepted template, in characters after trimming.
pub const TEMPLATE_MIN: usize = 1;
/// Longest accepted template, in characters after trimming.
pub const TEMPLATE_MAX: usize = 1024;

/// The grammar as an ECMA-262 regular expression, for the OpenAPI schema: something not
/// blank, no [`PARENT_SEGMENT`] between [`SEPARATORS`], and only text, known placeholders
/// and known time fields.
pub fn pattern() -> String {
    let escape = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if "^$\\.*+?()[]{}|".contains(c) {
                    format!("\\{c}")
                } else {
                    c.to_string()
                }
            })
            .collect()
    };
    let separators: String = SEPARATORS.iter().map(|c| escape(&c.to_string())).collect();
    let times: String = TIME_FIELDS.iter().collect();
    format!(
        r"^(?=.*\S)(?!(?:.*[{separators}])?{parent}(?:[{separators}].*)?$)(?:[^{{}}%]|\{{(?:{names})\}}|%[{times}%])*$",
        parent = escape(PARENT_SEGMENT),
        names = PLACEHOLDERS.map(escape).join("|"),
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(usize),
    Time(char),
}

/// A template that has been checked: its placeholders are known and its braces balanced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    parts: Vec<Part>,
}

/// The values a template is rendered with.
#[derive(Debug, Clone)]
pub struct TemplateValues<'a> {
    pub database_name: &'a str,
    pub company_name: &'a str,
    pub city: &'a str,
    pub agent_id_responsible: &'a str,
    pub job_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{0}}}; allowed: {allowed}", allowed = PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", "))]
    UnknownPlaceholder(String),
    #[error("unbalanced braces: a {{ at character {0} is never closed")]
    Unclosed(usize),
    #[error("unbalanced braces: a }} at character {0} was never opened")]
    Unopened(usize),
    #[error("unknown time field %{0}; allowed: {allowed} (and %% for a literal %)", allowed = TIME_FIELDS.map(|f| format!("%{f}")).join(" "))]
    UnknownTimeField(char),
    #[error("a lone % at the end; write %% for a literal %")]
    TrailingPercent,
    #[error("'..' path segments are not allowed")]
    ParentSegment,
}

impl PathTemplate {
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        if template
            .split(SEPARATORS)
            .any(|segment| segment == PARENT_SEGMENT)
        {
            return Err(TemplateError::ParentSegment);
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, n) in chars.by_ref() {
                        if n == '}' {
                            closed = true;
                            break;
                        }
                        if n == '{' {
                            return Err(TemplateError::Unclosed(i + 1));
                        }
                        name.push(n);
                    }
                    if !closed {
                        return Err(TemplateError::Unclosed(i + 1));
                    }
                    let index = PLACEHOLDERS
                        .iter()
                        .position(|p| *p == name)
                        .ok_or(TemplateError::UnknownPlaceholder(name))?;
                    flush(&mut text, &mut parts);
                    parts.push(Part::Field(index));
                }
                '}' => return Err(TemplateError::Unopened(i + 1)),
                '%' => match chars.next() {
                    Some((_, '%')) => text.push('%'),
                    Some((_, f)) if TIME_FIELDS.contains(&f) => {
                        flush(&mut text, &mut parts);
                        parts.push(Part::Time(f));
                    }
                    Some((_, other)) => return Err(TemplateError::UnknownTimeField(other)),
                    None => return Err(TemplateError::TrailingPercent),
                },
                c => text.push(c),
            }
        }
        flush(&mut text, &mut parts);
        Ok(Self { parts })
    }

    /// The path for one slot, its time fields read in UTC (the seed's schedules).
    pub fn render(
        &self,
        values: &TemplateValues<'_>,
        slot: DateTime<Utc>,
    ) -> Result<String, Climbs> {
        self.render_wall(values, slot.naive_utc())
    }

    /// The path for one slot, its time fields read from the slot's wall-clock time in the
    /// job's zone (DESIGN §11: the file a local cron job names after its local date; see
    /// `Schedule::wall_time`). Values are made safe for a single path segment: a `/` or
    /// `\` inside a company name becomes `_`, and a value of `.` or `..` becomes `_`. The
    /// rendered path is then checked as a whole: one with a `..` segment, however its pieces
    /// made it, is never handed out ([`Climbs`] names the placeholders that formed it).
    pub fn render_wall(
        &self,
        values: &TemplateValues<'_>,
        slot: NaiveDateTime,
    ) -> Result<String, Climbs> {
        let mut out = String::new();
        // The segment being rendered, and the placeholders in it.
        let mut segment = String::new();
        let mut fields: Vec<&'static str> = Vec::new();
        let mut climbing: Option<Vec<&'static str>> = None;
        let mut end_segment = |segment: &mut String, fields: &mut Vec<&'static str>| {
            if segment == PARENT_SEGMENT {
                let all = climbing.get_or_insert_with(Vec::new);
                for field in fields.iter() {
                    if !all.contains(field) {
                        all.push(field);
                    }
                }
            }
            segment.clear();
            fields.clear();
        };
        for part in &self.parts {
            let piece = match part {
                Part::Text(t) => t.clone(),
                Part::Field(i) => {
                    // A value holds no separator (segment_safe), so it lies in this segment.
                    fields.push(PLACEHOLDERS[*i]);
                    segment_safe(&match *i {
                        0 => values.database_name.to_owned(),
                        1 => values.company_name.to_owned(),
                        2 => values.city.to_owned(),
                        3 => values.agent_id_responsible.to_owned(),
                        _ => values.job_id.to_string(),
                    })
                }
                Part::Time(f) => match f {
                    'Y' => format!("{:04}", slot.year()),
                    'm' => format!("{:02}", slot.month()),
                    'd' => format!("{:02}", slot.day()),
                    'H' => format!("{:02}", slot.hour()),
                    _ => format!("{:02}", slot.minute()),
                },
            };
            for c in piece.chars() {
                if SEPARATORS.contains(&c) {
                    end_segment(&mut segment, &mut fields);
                } else {
                    segment.push(c);
                }
            }
            out.push_str(&piece);
        }
        end_segment(&mut segment, &mut fields);
        match climbing {
            Some(fields) => Err(Climbs { fields }),
            None => Ok(out),
        }
    }
}

/// A rendered path that would have a `..` segment, climbing out of the template's
/// directories: the placeholders whose values formed that segment with the template's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rendered path would have a '..' segment")]
pub struct Climbs {
    pub fields: Vec<&'static str>,
}

fn flush(text: &mut String, parts: &mut Vec<Part>) {
    if !text.is_empty() {
        parts.push(Part::Text(std::mem::take(text)));
    }
}

fn segment_safe(value: &str) -> String {
    if value == "." || value == ".." {
        return "_".to_owned();
    }
    value.replace(['/', '\\'], "_")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn values() -> TemplateValues<'static> {
        TemplateValues {
            database_name: "erp",
            company_name: "acme",
            city: "Lyon",
            agent_id_responsible: "agent-7",
            job_id: 42,
        }
    }

    #[test]
    fn every_placeholder_and_time_field_is_rendered_from_the_slot() {
        let t = PathTemplate::parse(
            "/b/{company_name}/{city}/{database_name}-{agent_id_responsible}-{job_id}/%Y/%m/%d_%H%M_100%%.dump",
        )
        .unwrap();
        let slot = Utc.with_ymd_and_hms(2026, 3, 7, 2, 5, 0).unwrap();
        assert_eq!(
            t.render(&values(), slot).unwrap(),
            "/b/acme/Lyon/erp-agent-7-42/2026/03/07_0205_100%.dump"
        );
    }

    #[test]
    fn time_fields_can_come_from_a_local_wall_time() {
        let t = PathTemplate::parse("/b/{database_name}_%Y%m%d_%H%M.sql.gz").unwrap();
        let wall = chrono::NaiveDate::from_ymd_opt(2027, 3, 28)
            .unwrap()
            .and_hms_opt(3, 30, 0)
            .unwrap();
        assert_eq!(
            t.render_wall(&values(), wall).unwrap(),
            "/b/erp_20270328_0330.sql.gz"
        );
        assert_eq!(
            t.render(&values(), wall.and_utc()),
            t.render_wall(&values(), wall)
        );
    }

    #[test]
    fn a_template_without_placeholders_renders_as_itself() {
        let t = PathTemplate::parse("/srv/backups/latest.sql.gz").unwrap();
        let slot = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            t.render(&values(), slot).unwrap(),
            "/srv/backups/latest.sql.gz"
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let cases = [
            ("/b/{database}", "unknown placeholder {database}"),
            ("/b/{}", "unknown placeholder {}"),
            ("/b/{city", "never closed"),
            ("/b/{ci{ty}", "never closed"),
            ("/b/city}", "never opened"),
            ("/b/%Y/%q", "unknown time field %q"),
            ("/b/50%", "lone %"),
            ("/b/../etc/passwd", "'..'"),
            ("..", "'..'"),
            ("/b\\..\\x", "'..'"),
        ];
        for (template, reason) in cases {
            let err = PathTemplate::parse(template)
                .expect_err(template)
                .to_string();
            assert!(
                err.contains(reason),
                "{template:?}: {err:?} should contain {reason:?}"
            );
        }
    }

    #[test]
    fn refusals_list_what_the_grammar_allows() {
        let unknown = PathTemplate::parse("/b/{x}").unwrap_err().to_string();
        assert_eq!(
            unknown,
            "unknown placeholder {x}; allowed: {database_name}, {company_name}, {city}, {agent_id_responsible}, {job_id}"
        );
        let time = PathTemplate::parse("/b/%q").unwrap_err().to_string();
        assert_eq!(
            time,
            "unknown time field %q; allowed: %Y %m %d %H %M (and %% for a literal %)"
        );
    }

    /// Pinned as clients see it in the OpenAPI schema: a change of the grammar shows here.
    #[test]
    fn the_published_pattern_states_the_grammar() {
        assert_eq!(
            pattern(),
            r"^(?=.*\S)(?!(?:.*[/\\])?\.\.(?:[/\\].*)?$)(?:[^{}%]|\{(?:database_name|company_name|city|agent_id_responsible|job_id)\}|%[YmdHM%])*$"
        );
    }

    #[test]
    fn dots_inside_a_name_are_not_a_parent_segment() {
        assert!(PathTemplate::parse("/b/db..v2/x...y/.hidden").is_ok());
    }

    #[test]
    fn values_cannot_climb_out_of_the_template() {
        let t = PathTemplate::parse("/b/{company_name}/{city}/x").unwrap();
        let v = TemplateValues {
            company_name: "..",
            city: "a/../../etc",
            ..values()
        };
        let slot = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(t.render(&v, slot).unwrap(), "/b/_/a_.._.._etc/x");
    }

    #[test]
    fn two_dot_values_side_by_side_do_not_make_a_parent_segment() {
        let t = PathTemplate::parse("/backups/{company_name}{city}/x").unwrap();
        let v = TemplateValues {
            company_name: ".",
            city: ".",
            ..values()
        };
        let slot = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(t.render(&v, slot).unwrap(), "/backups/__/x");
    }

    /// Values the API never accepts (empty ones), as a database written by other means might
    /// hold: the rendered path is checked whatever its pieces.
    #[test]
    fn a_rendered_parent_segment_is_refused_naming_the_fields_that_formed_it() {
        let slot = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let cases: [(&str, &str, &str, Option<Vec<&str>>); 5] = [
            ("/b/.{city}./x", "acme", "", Some(vec!["city"])),
            (
                "/b/.{company_name}{city}./x",
                "",
                "",
                Some(vec!["company_name", "city"]),
            ),
            ("C:\\b\\{company_name}.{city}\\x", "", ".", None),
            (
                "/b/{company_name}.{city}.",
                "",
                "",
                Some(vec!["company_name", "city"]),
            ),
            ("/b/.{city}./x", "acme", "a", None),
        ];
        for (template, company_name, city, climbs) in cases {
            let v = TemplateValues {
                company_name,
                city,
                ..values()
            };
            let rendered = PathTemplate::parse(template).unwrap().render(&v, slot);
            match climbs {
                Some(fields) => assert_eq!(
                    rendered,
                    Err(Climbs { fields }),
                    "{template} {company_name:?} {city:?}"
                ),
                None => assert!(rendered.is_ok(), "{template}: {rendered:?}"),
            }
        }
    }
}
