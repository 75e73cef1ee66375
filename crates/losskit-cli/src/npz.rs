//! Reading named arrays from an .npz input of unknown dtypes, and writing an .npz output atomically.
//!
//! ndarray-npy reads one element type at a time and rejects a mismatched dtype from the header alone (before
//! reading any data), so [`NpzInput::read`] probes f32, f64, i64, i32 in turn and returns whichever matched.
//! Outputs go to a temporary file in the destination's folder and are renamed into place once complete, so a
//! failed run never leaves a partial file.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use anyhow::Context;
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpyError, ReadNpzError, ReadableElement, WriteNpyExt};

use crate::cli::BadInput;

/// An array read from the input, in whichever dtype the file holds.
#[derive(Debug)]
pub enum AnyArray {
    /// float32.
    F32(ArrayD<f32>),
    /// float64.
    F64(ArrayD<f64>),
    /// int32.
    I32(ArrayD<i32>),
    /// int64.
    I64(ArrayD<i64>),
}

impl AnyArray {
    /// The numpy name of the dtype (`float32`, ...).
    pub fn dtype(&self) -> &'static str {
        match self {
            AnyArray::F32(_) => "float32",
            AnyArray::F64(_) => "float64",
            AnyArray::I32(_) => "int32",
            AnyArray::I64(_) => "int64",
        }
    }
}

/// numpy's name for an .npy type descriptor (`'<i2'` → `int16`, `'|b1'` → `bool`); the descriptor itself when it is
/// not a plain number type (structured or string dtypes).
fn dtype_name(descriptor: &str) -> String {
    let d = descriptor.trim_matches(|c| c == '\'' || c == '"');
    let d = d.trim_start_matches(['<', '>', '|', '=']);
    let (kind, bytes) = d.split_at(d.len().min(1));
    let bits = bytes.parse::<u32>().ok().map(|b| b * 8);
    match (kind, bits) {
        ("b", Some(8)) => "bool".into(),
        ("i", Some(bits)) => format!("int{bits}"),
        ("u", Some(bits)) => format!("uint{bits}"),
        ("f", Some(bits)) => format!("float{bits}"),
        ("c", Some(bits)) => format!("complex{bits}"),
        _ => descriptor.into(),
    }
}

/// An opened .npz input.
pub struct NpzInput {
    path: PathBuf,
    reader: NpzReader<BufReader<File>>,
    names: Vec<String>,
}

impl NpzInput {
    /// Opens `path` and lists its arrays.
    ///
    /// # Errors
    /// [`BadInput`] when the file cannot be opened or is not an .npz (zip) archive.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let shown = path.display();
        let file = File::open(path).map_err(|e| BadInput::with_source(format!("cannot open --input {shown}"), e))?;
        // ndarray-npy's errors repeat their source in their own message, so only the message is kept.
        let not_npz = |e: ReadNpzError| BadInput::new(format!("--input {shown} is not an .npz file: {e}"));
        let mut reader = NpzReader::new(BufReader::new(file)).map_err(not_npz)?;
        let names = reader.names().map_err(not_npz)?;
        Ok(NpzInput { path: path.to_path_buf(), reader, names })
    }

    /// The names of the arrays in the file, in archive order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether the file holds an array of this name.
    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// Reads the array `name` in its own dtype.
    ///
    /// # Errors
    /// [`BadInput`] when the array is absent, its dtype is not one of float32, float64, int32, int64, or its data
    /// cannot be read.
    pub fn read(&mut self, name: &str) -> anyhow::Result<AnyArray> {
        if !self.has(name) {
            return Err(BadInput::new(format!("{} has no array `{name}`", self.path.display())).into());
        }
        let last_descriptor = match self.try_read::<f32>(name)? {
            Ok(a) => return Ok(AnyArray::F32(a)),
            Err(d) => d,
        };
        if let Ok(a) = self.try_read::<f64>(name)? {
            return Ok(AnyArray::F64(a));
        }
        if let Ok(a) = self.try_read::<i64>(name)? {
            return Ok(AnyArray::I64(a));
        }
        match self.try_read::<i32>(name)? {
            Ok(a) => Ok(AnyArray::I32(a)),
            Err(_) => Err(BadInput::new(format!(
                "array `{name}` has dtype {last_descriptor}; expected float32, float64, int32 or int64"
            ))
            .into()),
        }
    }

    /// Reads `name` as `T`: `Ok(Ok(array))`, `Ok(Err(dtype name))` when the dtype differs, `Err` when unreadable.
    fn try_read<T: ReadableElement>(&mut self, name: &str) -> anyhow::Result<Result<ArrayD<T>, String>> {
        match self.reader.by_name::<_, IxDyn>(name) {
            Ok(a) => Ok(Ok(a)),
            Err(ReadNpzError::Npy(ReadNpyError::WrongDescriptor(d))) => Ok(Err(dtype_name(&d.to_string()))),
            // ndarray-npy's messages already include their source: keep the message only.
            Err(e) => {
                Err(BadInput::new(format!("cannot read array `{name}` from {}: {e}", self.path.display())).into())
            }
        }
    }
}

/// An output .npz being assembled in a temporary file beside its destination.
pub struct NpzOutput {
    path: PathBuf,
    writer: NpzWriter<BufWriter<tempfile::NamedTempFile>>,
}

impl NpzOutput {
    /// Starts writing `path` (through a temporary file in the same folder).
    ///
    /// # Errors
    /// When the temporary file cannot be created.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let dir = output_dir(path);
        let tmp = tempfile::Builder::new()
            .prefix(".losskit-")
            .suffix(".npz.tmp")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        Ok(NpzOutput { path: path.to_path_buf(), writer: NpzWriter::new(BufWriter::new(tmp)) })
    }

    /// Adds one array.
    ///
    /// # Errors
    /// On a write failure.
    pub fn add<A: WriteNpyExt + ?Sized>(&mut self, name: &str, array: &A) -> anyhow::Result<()> {
        self.writer.add_array(name, array).with_context(|| format!("writing array `{name}`"))
    }

    /// Completes the archive and renames it to its destination.
    ///
    /// # Errors
    /// On a write, flush or rename failure (the temporary file is then removed).
    pub fn finish(self) -> anyhow::Result<()> {
        let shown = self.path.display().to_string();
        let buffered = self.writer.finish().with_context(|| format!("writing {shown}"))?;
        let tmp = buffered.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {shown}"))?;
        tmp.as_file().sync_all().with_context(|| format!("writing {shown}"))?;
        tmp.persist(&self.path).map_err(|e| e.error).with_context(|| format!("renaming the output to {shown}"))?;
        Ok(())
    }
}

/// The folder an output goes to (`.` for a bare file name).
pub fn output_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Checks, before any work, that the output's folder exists.
///
/// # Errors
/// [`BadInput`] when it does not, or when the path names a folder.
pub fn check_output_path(path: &Path) -> anyhow::Result<()> {
    let dir = output_dir(path);
    if !dir.is_dir() {
        return Err(
            BadInput::new(format!("--output {}: folder {} does not exist", path.display(), dir.display())).into()
        );
    }
    if path.is_dir() {
        return Err(BadInput::new(format!("--output {} is a folder; give a file name", path.display())).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2, arr0, array};

    fn write(path: &Path, f: impl FnOnce(&mut NpzWriter<File>)) {
        let mut w = NpzWriter::new(File::create(path).unwrap());
        f(&mut w);
        w.finish().unwrap();
    }

    #[test]
    fn reads_each_dtype_as_itself() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.npz");
        write(&p, |w| {
            w.add_array("a", &array![1.5_f32, 2.0]).unwrap();
            w.add_array("b", &array![[1.5_f64]]).unwrap();
            w.add_array("c", &array![3_i32]).unwrap();
            w.add_array("d", &array![4_i64, 5]).unwrap();
            w.add_array("e", &array![1_u8]).unwrap();
        });
        let mut input = NpzInput::open(&p).unwrap();
        assert_eq!(input.names(), ["a", "b", "c", "d", "e"]);
        assert!(matches!(input.read("a").unwrap(), AnyArray::F32(a) if a.as_slice() == Some(&[1.5, 2.0][..])));
        let b = input.read("b").unwrap();
        assert_eq!(b.dtype(), "float64");
        assert!(matches!(b, AnyArray::F64(a) if a.shape() == [1, 1]));
        assert!(matches!(input.read("c").unwrap(), AnyArray::I32(a) if a[[0]] == 3));
        assert!(matches!(input.read("d").unwrap(), AnyArray::I64(a) if a[[1]] == 5));
        let e = input.read("e").unwrap_err().to_string();
        assert!(e.contains("`e` has dtype uint8;"), "{e}");
        assert!(input.read("zzz").unwrap_err().to_string().contains("no array `zzz`"));
    }

    #[test]
    fn descriptors_are_named_as_numpy_does() {
        assert_eq!(dtype_name("'<i2'"), "int16");
        assert_eq!(dtype_name("'|u1'"), "uint8");
        assert_eq!(dtype_name("'>f2'"), "float16");
        assert_eq!(dtype_name("'|b1'"), "bool");
        assert_eq!(dtype_name("'<c16'"), "complex128");
        assert_eq!(dtype_name("'<U5'"), "'<U5'");
        assert_eq!(dtype_name("[('a', '<i4')]"), "[('a', '<i4')]");
    }

    #[test]
    fn a_text_file_is_not_an_npz() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.npz");
        std::fs::write(&p, "hello").unwrap();
        let e = NpzInput::open(&p).err().unwrap();
        assert!(e.chain().any(|c| c.is::<BadInput>()));
        assert!(e.to_string().contains("is not an .npz file"));
    }

    #[test]
    fn output_appears_only_on_finish_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.npz");
        let mut out = NpzOutput::create(&p).unwrap();
        out.add("loss", &arr0(0.25_f64)).unwrap();
        out.add("grad", &Array2::<f32>::ones((2, 3))).unwrap();
        assert!(!p.exists());
        out.finish().unwrap();
        let mut r = NpzReader::new(File::open(&p).unwrap()).unwrap();
        let loss: ndarray::Array0<f64> = r.by_name("loss").unwrap();
        assert_eq!(loss.into_scalar(), 0.25);
        let g: Array2<f32> = r.by_name("grad").unwrap();
        assert_eq!(g.shape(), [2, 3]);
        // Only the output remains: the temporary file was renamed, not copied.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_abandoned_output_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.npz");
        let mut out = NpzOutput::create(&p).unwrap();
        out.add("x", &Array1::<f64>::zeros(4)).unwrap();
        drop(out);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn output_folder_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_output_path(&dir.path().join("out.npz")).is_ok());
        assert!(check_output_path(&dir.path().join("missing/out.npz")).is_err());
        assert!(check_output_path(dir.path()).is_err());
        assert!(check_output_path(Path::new("out.npz")).is_ok());
    }
}
