//! `losskit list [--json]`: every registered loss, sampler and metric with its parameters (defaults, ranges) and
//! paper, read from the library registries so the listing can never disagree with the code.
//!
//! Each registry is first turned into one neutral [`Item`] shape, then rendered as aligned text or as JSON with a
//! fixed structure: `{"losses": [...], "samplers": [...], "metrics": [...]}`, each item
//! `{"name", "family", "summary", "paper", "reference", "params": [{"name", "default", "range", "help"}]}`.
//! The JSON goes through derived `Serialize` structs so that key order is the declared one whatever serde_json
//! features other crates switch on.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use losskit::losses::{LOSSES, ParamSpec};
use losskit::metrics::{METRICS, MetricParam};
use losskit::samplers::{SAMPLERS, SamplerParam};

/// Arguments of `losskit list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Print JSON (a stable structure, for scripts) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One parameter, as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Param {
    name: String,
    default: String,
    range: String,
    help: String,
}

impl From<&ParamSpec> for Param {
    fn from(p: &ParamSpec) -> Self {
        Param { name: p.name.into(), default: p.default.into(), range: p.range.describe(), help: p.help.into() }
    }
}

impl From<&SamplerParam> for Param {
    fn from(p: &SamplerParam) -> Self {
        Param { name: p.name.into(), default: p.default.into(), range: p.range.into(), help: p.help.into() }
    }
}

impl From<&MetricParam> for Param {
    fn from(p: &MetricParam) -> Self {
        Param { name: p.name.into(), default: p.default.into(), range: p.values.into(), help: p.summary.into() }
    }
}

/// One registered method (loss, sampler or metric), as shown. Fields a registry does not have are `None` and left
/// out of the JSON (metrics have no family or paper key; their `reference` is the scikit-learn function they match).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Item {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<String>,
    summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    paper: Option<String>,
    reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    inputs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api: Option<String>,
    params: Vec<Param>,
}

/// A titled group of items (`losses`, ...).
#[derive(Debug)]
struct Section {
    key: &'static str,
    title: &'static str,
    note: &'static str,
    items: Vec<Item>,
}

fn sections() -> Vec<Section> {
    let losses = LOSSES
        .iter()
        .map(|e| Item {
            name: e.name.into(),
            family: Some(e.family.as_str().into()),
            summary: e.summary.into(),
            paper: Some(e.paper.into()),
            reference: e.reference.into(),
            inputs: None,
            api: None,
            params: e.params.iter().map(Param::from).collect(),
        })
        .collect();
    let samplers = SAMPLERS
        .iter()
        .map(|e| Item {
            name: e.name.into(),
            family: Some(e.kind.noun().into()),
            summary: e.summary.into(),
            paper: Some(e.paper.into()),
            reference: e.reference.into(),
            inputs: None,
            api: None,
            params: e.params.iter().map(Param::from).collect(),
        })
        .collect();
    let metrics = METRICS
        .iter()
        .map(|e| Item {
            name: e.name.into(),
            family: None,
            summary: e.summary.into(),
            paper: None,
            reference: e.reference.into(),
            inputs: Some(e.inputs.into()),
            api: Some(e.api.into()),
            params: e.params.iter().map(Param::from).collect(),
        })
        .collect();
    vec![
        Section {
            key: "losses",
            title: "Losses",
            note: "Every loss also takes reduction = mean | sum | none (default mean). Arrays come from the input \
                   file (`losskit loss --help`).",
            items: losses,
        },
        Section {
            key: "samplers",
            title: "Samplers",
            note: "Over-samplers, under-samplers and cleaning methods run with `losskit resample`; batch samplers, \
                   reweighting, likelihoods and subclass assignment are library tools (the type in their summary).",
            items: samplers,
        },
        Section { key: "metrics", title: "Metrics", note: "", items: metrics },
    ]
}

/// Runs `losskit list`.
///
/// # Errors
/// A failure to write to stdout.
pub fn run(args: &ListArgs) -> anyhow::Result<()> {
    let sections = sections();
    let text = if args.json { render_json(&sections) } else { render_text(&sections) };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).context("writing to stdout")
}

fn render_json(sections: &[Section]) -> String {
    use serde::ser::SerializeMap;
    /// `{"losses": [...], ...}` in section order.
    struct Root<'a>(&'a [Section]);
    impl Serialize for Root<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for section in self.0 {
                map.serialize_entry(section.key, &section.items)?;
            }
            map.end()
        }
    }
    // Serialising plain structs of strings cannot fail.
    let mut text = serde_json::to_string_pretty(&Root(sections)).unwrap_or_default(); // ok: infallible
    text.push('\n');
    text
}

/// Text is wrapped to this many columns (characters).
const WIDTH: usize = 100;

/// Pads `s` to `width` characters (not bytes: ranges contain `≥`).
fn pad(s: &str, width: usize) -> String {
    format!("{s:<width$}")
}

/// Appends `lead` then `text` word-wrapped to [`WIDTH`] columns, continuation lines indented by `hang` spaces
/// (a word longer than a line gets a line of its own). No line ends in a space.
fn push_wrapped(out: &mut String, lead: &str, text: &str, hang: usize) {
    let mut line = lead.to_string();
    let mut fresh = true; // nothing but the lead or the indent on this line yet
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if !fresh && len + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(hang);
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Text layout: per item a title line (`name  [family]`), the summary, the paper (or reference), then one line per
/// parameter (name, default, accepted values, aligned) followed by its help, indented; all wrapped to [`WIDTH`].
fn render_text(sections: &[Section]) -> String {
    let mut out = String::new();
    for (k, s) in sections.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{} ({})\n", s.title, s.items.len()));
        if !s.note.is_empty() {
            push_wrapped(&mut out, "", s.note, 0);
        }
        for i in &s.items {
            out.push('\n');
            match &i.family {
                Some(family) => out.push_str(&format!("{}  [{family}]\n", i.name)),
                None => out.push_str(&format!("{}\n", i.name)),
            }
            push_wrapped(&mut out, "    ", &i.summary, 4);
            match &i.paper {
                Some(paper) => push_wrapped(&mut out, "    paper: ", &format!("{} [{paper}]", i.reference), 11),
                None => push_wrapped(&mut out, "    reference: ", &i.reference, 15),
            }
            if let Some(inputs) = &i.inputs {
                push_wrapped(&mut out, "    inputs: ", inputs, 12);
            }
            if let Some(api) = &i.api {
                push_wrapped(&mut out, "    api: ", api, 9);
            }
            if i.params.is_empty() {
                out.push_str("    parameters: none\n");
                continue;
            }
            out.push_str("    parameters (name, default, accepted values):\n");
            let w_name = i.params.iter().map(|p| p.name.chars().count()).max().unwrap_or(0);
            let w_default = i.params.iter().map(|p| p.default.chars().count()).max().unwrap_or(0);
            for p in &i.params {
                let lead = format!("      {}  {}  ", pad(&p.name, w_name), pad(&p.default, w_default));
                let hang = lead.chars().count();
                push_wrapped(&mut out, &lead, &p.range, hang);
                if !p.help.is_empty() {
                    push_wrapped(&mut out, "          ", &p.help, 10);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Section> {
        vec![Section {
            key: "losses",
            title: "Losses",
            note: "",
            items: vec![Item {
                name: "focal".into(),
                family: Some("classification".into()),
                summary: "Down-weights easy examples.".into(),
                paper: Some("lin2017focal".into()),
                reference: "Lin et al. (2017)".into(),
                inputs: None,
                api: None,
                params: vec![
                    Param { name: "gamma".into(), default: "2".into(), range: "≥ 0".into(), help: "focusing".into() },
                    Param { name: "alpha".into(), default: "none".into(), range: "[0, 1]".into(), help: "".into() },
                ],
            }],
        }]
    }

    #[test]
    fn text_columns_line_up_and_lines_have_no_trailing_spaces() {
        let text = render_text(&sample());
        let rows: Vec<&str> =
            text.lines().filter(|l| l.starts_with("      gamma") || l.starts_with("      alpha")).collect();
        assert_eq!(rows.len(), 2, "{text}");
        // The accepted values start at the same character position on both rows.
        let column = |row: &str, word: &str| row[..row.find(word).unwrap()].chars().count();
        assert_eq!(column(rows[0], "≥ 0"), column(rows[1], "[0, 1]"));
        assert_eq!(column(rows[0], "≥ 0"), "      gamma  none  ".len());
        assert!(text.contains("\n          focusing\n"), "{text}");
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text}");
        assert!(text.starts_with("Losses (1)\n"));
    }

    #[test]
    fn long_text_wraps_to_the_width_with_a_hanging_indent() {
        let mut out = String::new();
        let words = "word ".repeat(40);
        push_wrapped(&mut out, "    paper: ", &words, 11);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH && !l.ends_with(' ')), "{out}");
        assert!(lines[1..].iter().all(|l| l.starts_with(&" ".repeat(11)) && !l.starts_with(&" ".repeat(12))));
        assert_eq!(out.split_whitespace().filter(|w| *w == "word").count(), 40);
        // A word longer than the width is kept whole on its own line.
        let mut out = String::new();
        push_wrapped(&mut out, "  ", &format!("a {} b", "x".repeat(150)), 2);
        assert_eq!(out.lines().count(), 3, "{out}");
    }

    #[test]
    fn items_without_family_or_paper_show_their_reference_and_omit_the_keys() {
        let metric = Item {
            name: "accuracy".into(),
            family: None,
            summary: "fraction correct".into(),
            paper: None,
            reference: "sklearn.metrics.accuracy_score".into(),
            inputs: Some("y_true [N], y_pred [N]".into()),
            api: Some("ConfusionMatrix::accuracy".into()),
            params: vec![],
        };
        let sections = vec![Section { key: "metrics", title: "Metrics", note: "", items: vec![metric] }];
        let text = render_text(&sections);
        assert!(
            text.contains("\naccuracy\n    fraction correct\n    reference: sklearn.metrics.accuracy_score\n"),
            "{text}"
        );
        assert!(text.contains("    inputs: y_true [N], y_pred [N]\n    api: ConfusionMatrix::accuracy\n"), "{text}");
        assert!(text.contains("    parameters: none\n"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&render_json(&sections)).unwrap();
        let m = v["metrics"][0].as_object().unwrap();
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert!(!keys.contains(&"family") && !keys.contains(&"paper"), "{keys:?}");
        assert_eq!(m["api"], "ConfusionMatrix::accuracy");
    }

    #[test]
    fn json_has_the_documented_structure() {
        let text = render_json(&sample());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let focal = &v["losses"][0];
        assert_eq!(focal["name"], "focal");
        assert_eq!(focal["family"], "classification");
        assert_eq!(focal["params"][0]["range"], "≥ 0");
        assert_eq!(focal["params"][1]["default"], "none");
        // Keys in declared order.
        let keys = ["\"name\"", "\"family\"", "\"summary\"", "\"paper\"", "\"reference\"", "\"params\""];
        let at: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
    }
}
