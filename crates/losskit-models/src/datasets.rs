//! Datasets: the embedded UCI red wine quality data and a CSV loader.
//!
//! Nothing here opens a file: [`load_csv`] reads any [`std::io::Read`] (the CLI opens the file), and the embedded
//! data is compiled into the binary with `include_bytes!`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use ndarray::{Array1, Array2};

use losskit_tensor::{Error, Result, check};

/// A classification dataset: features, labels re-indexed to `0..C`, and the names of both.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Short name (`wine-quality`, or what the caller sets for a CSV).
    pub name: String,
    /// Features `[N, D]`.
    pub x: Array2<f64>,
    /// Labels `[N]` in `0..C`.
    pub y: Array1<i64>,
    /// One name per feature column `[D]`.
    pub feature_names: Vec<String>,
    /// The original label of each class `[C]`: `class_names[k]` is the text of label k (`"3"`..`"8"` for wine).
    pub class_names: Vec<String>,
}

impl Dataset {
    /// A dataset from its parts, validated.
    ///
    /// # Errors
    /// [`Error::Shape`] for mismatched lengths, [`Error::Empty`] for no rows, [`Error::NonFinite`] for NaN/∞
    /// features, [`Error::LabelOutOfRange`] for labels outside `0..class_names.len()`.
    pub fn new(
        name: impl Into<String>,
        x: Array2<f64>,
        y: Array1<i64>,
        feature_names: Vec<String>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        check::non_empty("x", x.nrows())?;
        check::shape("y", y.shape(), &[Some(x.nrows())])?;
        check::shape("feature_names", &[feature_names.len()], &[Some(x.ncols())])?;
        check::finite("x", &x)?;
        check::labels("y", y.view(), class_names.len(), None)?;
        Ok(Self { name: name.into(), x, y, feature_names, class_names })
    }

    /// Number of rows N.
    pub fn n_samples(&self) -> usize {
        self.x.nrows()
    }

    /// Number of features D.
    pub fn n_features(&self) -> usize {
        self.x.ncols()
    }

    /// Number of classes C.
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Rows per class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        crate::trainer::class_counts(self.y.view(), self.n_classes())
    }
}

/// A dataset that [`by_name`] can load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetInfo {
    /// The name [`by_name`] takes.
    pub name: &'static str,
    /// One line: what it is, its size and class balance.
    pub summary: &'static str,
    /// Licence of the data.
    pub licence: &'static str,
    /// Citation.
    pub reference: &'static str,
}

/// Every embedded dataset, in `losskit list` order.
pub static DATASETS: &[DatasetInfo] = &[DatasetInfo {
    name: "wine-quality",
    summary: "UCI red wine quality: 1599 wines, 11 physico-chemical features, quality 3..8 as 6 classes \
              (10/53/681/638/199/18, imbalance 68:1)",
    licence: "CC BY 4.0",
    reference: "Cortez, Cerdeira, Almeida, Matos, Reis (2009), Modeling wine preferences by data mining from \
                physicochemical properties, Decision Support Systems 47(4):547-553, doi:10.1016/j.dss.2009.05.016",
}];

/// Loads an embedded dataset by name (see [`DATASETS`]).
///
/// # Errors
/// [`Error::UnknownName`] (kind `dataset`) for a name not in [`DATASETS`].
pub fn by_name(name: &str) -> Result<Dataset> {
    match name {
        "wine-quality" => wine_quality(),
        _ => Err(Error::UnknownName { kind: "dataset", name: name.into() }),
    }
}

static WINE_GZ: &[u8] = include_bytes!("../data/winequality-red.csv.gz");

/// The UCI red wine quality dataset, embedded: 1599 Portuguese "Vinho Verde" red wines, 11 physico-chemical
/// features (fixed acidity, volatile acidity, citric acid, residual sugar, chlorides, free sulfur dioxide, total
/// sulfur dioxide, density, pH, sulphates, alcohol) and the sensory quality score 3..8 as 6 classes.
///
/// Class counts (quality 3, 4, 5, 6, 7, 8 → labels 0..5): **10, 53, 681, 638, 199, 18**, an imbalance ratio of
/// 68:1. `class_names` are `"3"`..`"8"`.
///
/// The file is `winequality-red.csv.gz` as shipped in the `linfa-datasets` 0.8.1 crate (MIT/Apache-2.0 code; the data
/// itself is the UCI Machine Learning Repository's, licensed CC BY 4.0); the UCI original separates fields with
/// semicolons, this copy with commas.
///
/// # Errors
/// None in practice: the embedded file is checked by the tests; a corrupt build would give [`Error::Input`].
///
/// # References
/// Cortez, Cerdeira, Almeida, Matos, Reis (2009), *Modeling wine preferences by data mining from physicochemical
/// properties*, Decision Support Systems 47(4):547–553, doi:10.1016/j.dss.2009.05.016. UCI Machine Learning
/// Repository, *Wine Quality*, doi:10.24432/C56S3T, CC BY 4.0. See `docs/datasets.md`.
pub fn wine_quality() -> Result<Dataset> {
    let mut ds = load_csv(flate2::read::GzDecoder::new(WINE_GZ), "quality")?;
    ds.name = "wine-quality".into();
    Ok(ds)
}

fn input(what: String) -> Error {
    Error::Input { what }
}

/// Reads a labelled dataset from CSV text: a header row naming the columns, then one row per sample; the column
/// named `label_column` holds the labels and every other column a numeric feature.
///
/// - Cells are trimmed; blank lines are skipped; fields may be quoted (RFC 4180, via the `csv` crate).
/// - Labels may be any text. When every label parses as an integer they are ordered numerically (so `"10"` comes
///   after `"9"`), otherwise as strings (byte order); the k-th label in that order becomes class k, and
///   `class_names` keeps the original text (integers in canonical form, so `"07"` becomes `"7"`).
/// - Features must be finite numbers; missing values are not supported.
///
/// The returned dataset is named `csv`; set [`Dataset::name`] to taste.
///
/// # Errors
/// [`Error::Empty`] (`csv`) for input without a header or without data rows; [`Error::Input`] naming the line (1 is
/// the header) and column for a ragged row (wrong number of fields), an empty cell, a non-numeric or non-finite
/// feature, unreadable text (not UTF-8, I/O failure), a missing or duplicated `label_column`, or a header with no
/// feature column.
pub fn load_csv<R: Read>(reader: R, label_column: &str) -> Result<Dataset> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).trim(csv::Trim::All).from_reader(reader);
    let header = rdr.headers().map_err(|e| input(format!("csv header: {}", csv_error(&e))))?.clone();
    if header.is_empty() || (header.len() == 1 && header.get(0) == Some("")) {
        return Err(Error::Empty { arg: "csv" });
    }
    let names: Vec<String> = header.iter().map(str::to_string).collect();
    let label_at: Vec<usize> = (0..names.len()).filter(|&j| names[j] == label_column).collect();
    let label_idx = match label_at.as_slice() {
        [j] => *j,
        [] => {
            return Err(input(format!(
                "csv: label column {label_column:?} not found; the header has {}",
                names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
            )));
        }
        _ => return Err(input(format!("csv: label column {label_column:?} appears {} times", label_at.len()))),
    };
    let feature_names: Vec<String> =
        names.iter().enumerate().filter(|&(j, _)| j != label_idx).map(|(_, n)| n.clone()).collect();
    if feature_names.is_empty() {
        return Err(input(format!("csv: no feature column besides the label column {label_column:?}")));
    }
    let d = feature_names.len();
    let mut values: Vec<f64> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(input(format!("csv: {}", csv_error(&e)))),
        }
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() != names.len() {
            return Err(input(format!("csv line {line}: expected {} fields, found {}", names.len(), record.len())));
        }
        for (j, cell) in record.iter().enumerate() {
            if cell.is_empty() {
                return Err(input(format!("csv line {line}, column {:?}: empty cell", names[j])));
            }
            if j == label_idx {
                labels.push(cell.to_string());
                continue;
            }
            match cell.parse::<f64>() {
                Ok(v) if v.is_finite() => values.push(v),
                Ok(_) => {
                    return Err(input(format!("csv line {line}, column {:?}: {cell:?} is not finite", names[j])));
                }
                Err(_) => {
                    return Err(input(format!("csv line {line}, column {:?}: {cell:?} is not a number", names[j])));
                }
            }
        }
    }
    if labels.is_empty() {
        return Err(Error::Empty { arg: "csv" });
    }
    let n = labels.len();
    let (y, class_names) = encode_labels(&labels);
    let x = Array2::from_shape_vec((n, d), values).map_err(|e| input(format!("csv: {e}")))?;
    Dataset::new("csv", x, y, feature_names, class_names)
}

/// Maps label text to `0..C` (numeric order when every label is an integer, string order otherwise).
fn encode_labels(labels: &[String]) -> (Array1<i64>, Vec<String>) {
    let ints: Option<Vec<i64>> = labels.iter().map(|s| s.parse::<i64>().ok()).collect();
    match ints {
        Some(ints) => {
            let classes: BTreeSet<i64> = ints.iter().copied().collect();
            let index: BTreeMap<i64, i64> = classes.iter().enumerate().map(|(k, &v)| (v, k as i64)).collect();
            let y = ints.iter().map(|v| index[v]).collect();
            (y, classes.iter().map(i64::to_string).collect())
        }
        None => {
            let classes: BTreeSet<&str> = labels.iter().map(String::as_str).collect();
            let index: BTreeMap<&str, i64> = classes.iter().enumerate().map(|(k, &v)| (v, k as i64)).collect();
            let y = labels.iter().map(|v| index[v.as_str()]).collect();
            (y, classes.iter().map(|s| s.to_string()).collect())
        }
    }
}

/// A csv error in words, with its line where the csv crate knows it.
fn csv_error(e: &csv::Error) -> String {
    let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => format!("{line}text is not valid UTF-8"),
        csv::ErrorKind::Io(io) => format!("{line}read failed: {io}"),
        _ => format!("{line}{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn load(text: &str, label: &str) -> Result<Dataset> {
        load_csv(text.as_bytes(), label)
    }

    fn message(r: Result<Dataset>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn wine_quality_has_the_documented_shape_counts_and_names() {
        let ds = wine_quality().unwrap();
        assert_eq!((ds.n_samples(), ds.n_features(), ds.n_classes()), (1599, 11, 6));
        assert_eq!(ds.class_counts(), vec![10, 53, 681, 638, 199, 18]);
        assert_eq!(ds.class_names, vec!["3", "4", "5", "6", "7", "8"]);
        assert_eq!(ds.feature_names[0], "fixed acidity");
        assert_eq!(ds.feature_names[10], "alcohol");
        assert_eq!(ds.name, "wine-quality");
        // First row of the UCI file: 7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4;5
        assert_eq!(ds.x.row(0), array![7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4]);
        assert_eq!(ds.y[0], 2);
        assert_eq!(by_name("wine-quality").unwrap(), ds);
        assert!(matches!(by_name("iris"), Err(Error::UnknownName { kind: "dataset", .. })));
        assert!(DATASETS.iter().all(|d| by_name(d.name).is_ok()));
    }

    #[test]
    fn csv_loads_with_label_anywhere_and_integer_order() {
        let ds = load("a, label ,b\n1,10,2\n3,9,4\n\n5,10,6\n", "label").unwrap();
        assert_eq!(ds.x, array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
        assert_eq!(ds.feature_names, vec!["a", "b"]);
        // Numeric order: 9 < 10 (string order would put "10" first).
        assert_eq!(ds.class_names, vec!["9", "10"]);
        assert_eq!(ds.y, array![1, 0, 1]);
        assert_eq!(ds.name, "csv");
    }

    #[test]
    fn csv_string_labels_sort_as_text() {
        let ds = load("y,x\ncat,1\ndog,2\n\"ant, red\",3e-1\ncat,-4\n", "y").unwrap();
        assert_eq!(ds.class_names, vec!["ant, red", "cat", "dog"]);
        assert_eq!(ds.y, array![1, 2, 0, 1]);
        assert_eq!(ds.x.column(0), array![1.0, 2.0, 0.3, -4.0]);
        // Mixed integer and text labels are all text.
        let ds = load("y,x\n2,1\nb,2\n10,3\n", "y").unwrap();
        assert_eq!(ds.class_names, vec!["10", "2", "b"]);
    }

    #[test]
    fn csv_errors_name_line_and_column() {
        let m = message(load("a,b,y\n1,2,0\n3,4\n", "y"));
        assert_eq!(m, "csv line 3: expected 3 fields, found 2");
        let m = message(load("a,b,y\n1,2,0\n3,4,1,9\n", "y"));
        assert_eq!(m, "csv line 3: expected 3 fields, found 4");
        let m = message(load("a,b,y\n1,2,0\n3,x4,1\n", "y"));
        assert_eq!(m, "csv line 3, column \"b\": \"x4\" is not a number");
        let m = message(load("a,b,y\n1,nan,0\n", "y"));
        assert_eq!(m, "csv line 2, column \"b\": \"nan\" is not finite");
        let m = message(load("a,b,y\n1,,0\n", "y"));
        assert_eq!(m, "csv line 2, column \"b\": empty cell");
        let m = message(load("a,b,y\n1,2,0\n", "label"));
        assert_eq!(m, "csv: label column \"label\" not found; the header has \"a\", \"b\", \"y\"");
        let m = message(load("y,b,y\n1,2,0\n", "y"));
        assert!(m.contains("appears 2 times"), "{m}");
        let m = message(load("y\n1\n", "y"));
        assert!(m.contains("no feature column"), "{m}");
        assert!(matches!(load("", "y"), Err(Error::Empty { arg: "csv" })));
        assert!(matches!(load("a,y\n", "y"), Err(Error::Empty { arg: "csv" })));
        let bytes = b"a,y\n1,\xff\n";
        let m = load_csv(&bytes[..], "y").unwrap_err().to_string();
        assert!(m.contains("UTF-8") && m.contains("line 2"), "{m}");
    }
}
