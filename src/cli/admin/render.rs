//! How the admin commands print: `+---+` tables like the OpenStack clients,
//! `Property | Value` tables like `cinder show`, or JSON/YAML.
use serde::Serialize;

use super::Output;

/// Renders rows as a `+---+` table like the OpenStack clients do.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = format!(
        "+{}+\n",
        width
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let render = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&width)
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect();
        format!("|{}|\n", padded.join("|"))
    };
    let mut out = line.clone();
    out.push_str(&render(header.iter().map(|h| h.to_string()).collect()));
    out.push_str(&line);
    for row in rows {
        out.push_str(&render(row.clone()));
    }
    out.push_str(&line);
    out
}

/// `value` as JSON or YAML, or `table` for the table format.
pub fn emit<T: Serialize>(
    output: Output,
    value: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    Ok(match output {
        Output::Table => table(),
        Output::Json => serde_json::to_string_pretty(value)? + "\n",
        Output::Yaml => serde_yaml::to_string(value)?,
    })
}

/// A `Property | Value` table, as `cinder show`.
pub fn properties(rows: &[(&str, String)]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(k, v)| vec![k.to_string(), v.clone()])
        .collect();
    table(&["Property", "Value"], &rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_renders_like_the_openstack_clients() {
        let t = super::table(&["ID", "Size"], &[vec!["abc".into(), "1".into()]]);
        assert_eq!(
            t,
            "+-----+------+\n| ID  | Size |\n+-----+------+\n| abc | 1    |\n+-----+------+\n"
        );
    }
}
